from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bulletins.services import clock


class Command(BaseCommand):
    help = (
        "Run one sweep now (what Celery beat runs every SWEEP_INTERVAL_SECONDS): scheduled "
        "bulletins take effect, fixed terms end, reviews and reminders are due. Safe to repeat."
    )

    def add_arguments(self, parser):
        parser.add_argument("--at", help="sweep as if it were this ISO 8601 time")

    def handle(self, *args, at=None, **options):
        try:
            now = datetime.fromisoformat(at) if at else timezone.now()
        except ValueError as error:
            raise CommandError(f"--at must be an ISO 8601 time: {error}") from error
        if timezone.is_naive(now):
            now = timezone.make_aware(now)
        done = clock.sweep(now)
        self.stdout.write(", ".join(f"{name}: {count}" for name, count in done.items()))

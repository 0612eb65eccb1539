from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain; report the first broken link (exit status 1)."

    def handle(self, *args, **options):
        broken, checked = audit.first_broken_link()
        if broken is not None:
            raise CommandError(
                f"Audit trail broken at event #{broken.event_id}: {broken.reason} "
                f"({checked} events before it are intact)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} events checked."))

from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = (
        "Walk the audit trail's hash chain in seal order; report the first broken link (exit "
        "status 1) and how many events are not sealed yet. Read-only unless --seal."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seal",
            action="store_true",
            help="Seal the events committed so far into the chain before checking it.",
        )

    def handle(self, *args, **options):
        if options["seal"]:
            sealed = audit.seal_all()
            self.stdout.write(f"Sealed {sealed} events.")
        # Counted first, so an event sealed during the walk is counted at least once.
        awaiting = audit.unsealed_count()
        broken, checked = audit.first_broken_link()
        if broken is not None:
            raise CommandError(
                f"Audit trail broken at event #{broken.event_id}: {broken.reason} "
                f"({checked} events before it are intact)."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {checked} events checked, {awaiting} awaiting sealing."
            )
        )

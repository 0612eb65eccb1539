from django.core.management.base import BaseCommand, CommandError

from portal import audit


class Command(BaseCommand):
    help = (
        "Walk the audit trail's keyed hash chain in seal order and compare it with the latest "
        "checkpoint in AUDIT_CHECKPOINT_DIR; report every problem found (exit status 1) and how "
        "many events are not sealed yet. Read-only unless --seal."
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
        # Read first: the head only moves on, so a checkpoint written during the walk is no
        # reason to doubt it.
        checkpoint, problems = self._latest_checkpoint()
        # Counted first, so an event sealed during the walk is counted at least once.
        awaiting = audit.unsealed_count()
        broken, checked = audit.first_broken_link()
        if broken is not None:
            problems.append(
                f"Audit trail broken at event #{broken.event_id}: {broken.reason} "
                f"({checked} events before it are intact)."
            )
        for problem in (
            audit.checkpoint_problem(checkpoint),
            audit.rechained_over_a_broken_chain(),
        ):
            if problem is not None:
                problems.append(problem)
        if problems:
            raise CommandError("\n".join(problems))
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {checked} events checked, {awaiting} awaiting sealing."
            )
        )
        if checkpoint is None:
            self.stdout.write(
                f"No checkpoint in {audit.checkpoint_path()} yet: only the chain was checked."
            )
        else:
            self.stdout.write(
                f"It matches the checkpoint of {checkpoint.at} (seq {checkpoint.seq})."
            )

    def _latest_checkpoint(self):
        try:
            return audit.latest_checkpoint(), []
        except audit.CheckpointError as error:
            return None, [str(error)]

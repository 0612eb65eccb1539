from django.core.management.base import BaseCommand, CommandError

from portal import roster


class Command(BaseCommand):
    help = (
        "Create or update people (and missing units) from a roster CSV with the columns "
        f"{', '.join(roster.COLUMNS)}. All or nothing: any bad row and nothing changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_file", help="path of the roster CSV (UTF-8, header row)")
        parser.add_argument(
            "--send-invites",
            action="store_true",
            help="email each new person a link to set their password",
        )

    def handle(self, *args, csv_file, send_invites, **options):
        try:
            with open(csv_file, encoding="utf-8-sig", newline="") as lines:
                summary = roster.import_roster(lines, send_invites=send_invites, source=csv_file)
        except OSError as error:
            raise CommandError(f"Cannot read {csv_file}: {error.strerror}") from None
        except roster.RosterError as error:
            for problem in error.errors:
                self.stderr.write(str(problem))
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(str(summary)))

from django.core.management.base import BaseCommand, CommandError

from portal import roster, roster_rows


class Command(BaseCommand):
    help = (
        "Create or update people from a roster CSV with the columns "
        f"{', '.join(roster_rows.COLUMNS)}. People are matched by badge within their agency. "
        "All or nothing: any bad row and nothing changes. A unit path that names no existing "
        "unit is refused unless --create-units; the units to create, and changes to anyone's "
        "role, agency or email, are listed and made only with --confirm."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_file", help="path of the roster CSV (UTF-8, header row)")
        parser.add_argument(
            "--send-invites",
            action="store_true",
            help="email each new person a link to set their password",
        )
        parser.add_argument(
            "--create-units",
            action="store_true",
            help="create the units that do not exist yet (listed first, made with --confirm)",
        )
        parser.add_argument(
            "--confirm",
            action="store_true",
            help="make the listed changes to people's role, agency or email, and create the "
            "listed units",
        )

    def handle(self, *args, csv_file, send_invites, create_units, confirm, **options):
        try:
            with open(csv_file, encoding="utf-8-sig", newline="") as lines:
                summary = roster.import_roster(
                    lines,
                    send_invites=send_invites,
                    source=csv_file,
                    confirmed=confirm,
                    create_units=create_units,
                )
        except OSError as error:
            raise CommandError(f"Cannot read {csv_file}: {error.strerror}") from None
        except roster.RosterError as error:
            for problem in error.errors:
                self.stderr.write(str(problem))
            raise CommandError(str(error)) from None
        except roster.ConfirmationNeeded as needed:
            for item in needed:
                self.stderr.write(str(item))
            raise CommandError(f"{needed}: run again with --confirm to make them") from None
        self.stdout.write(self.style.SUCCESS(str(summary)))

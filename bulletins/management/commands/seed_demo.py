"""The demo agency of the July 2016 story: Metro Police Department, its boroughs and precincts,
the demo sign-ins and, on request, thousands of generated members. Safe to run again."""

from datetime import time

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import IntegerField
from django.db.models.functions import Mod
from django.utils import timezone
from tqdm import tqdm

from bulletins.management.commands._demo_bulletins import (
    seed_agency_lists,
    seed_bulletins,
    seed_templates,
)
from portal import mfa, roster, roster_rows, tours
from portal.models import Tour, Unit, User
from portal.units import ensure_units, unit_key

DEMO_PASSWORD = "portal-demo-2026"
# Demo data only: the documented authenticator-app secret (160 bits) of every demo sign-in, so
# anyone trying the demo (and the automated checks) can produce their codes.
DEMO_TOTP_SECRET = "OFFICERSAFETYDEMOPORTALSECRET234"
AGENCY = "Metro Police Department"
PRECINCTS_BY_BOROUGH = {
    "Manhattan South": (1, 5, 6, 7, 9, 10, 13, 14, 17, 18),
    "Manhattan North": (19, 20, 22, 23, 24, 25, 26, 28, 30, 32, 33, 34),
    "Bronx": (40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 52),
    "Brooklyn South": (60, 61, 62, 63, 66, 67, 68, 69, 70, 71, 72, 76, 78),
    "Brooklyn North": (73, 75, 77, 79, 81, 83, 84, 88, 90, 94),
    "Queens South": (100, 101, 102, 103, 105, 106, 107, 113),
    "Queens North": (104, 108, 109, 110, 111, 112, 114, 115),
    "Staten Island": (120, 121, 122, 123),
}
SQUADS_BY_PRECINCT = {
    17: ("Anti-Crime", "Station House Security"),
    72: ("Anti-Crime",),
    75: ("Anti-Crime", "Field Training Unit"),
    14: ("Anti-Crime",),
    40: ("Anti-Crime",),
}
DEMO_PEOPLE = (
    # email, name, badge, rank, member class, role, unit path below the agency
    ("officer@demo.test", "Maria Lopez", "4127", "Police Officer", "sworn", "officer",
     ("Manhattan South", "17th Precinct")),
    ("officer2@demo.test", "Andre Williams", "5583", "Police Officer", "sworn", "officer",
     ("Brooklyn North", "75th Precinct")),
    ("auxiliary@demo.test", "Sam Goldberg", "A2291", "Auxiliary Police Officer", "auxiliary",
     "officer", ("Manhattan South", "17th Precinct")),
    ("sergeant@demo.test", "Dan Kowalski", "3310", "Sergeant", "sworn", "supervisor",
     ("Manhattan South", "17th Precinct")),
    ("admin@demo.test", "Patricia Reyes", "0412", "Deputy Chief", "sworn", "admin", ()),
    ("commander@demo.test", "Insp. Ray Donovan", "2050", "Deputy Inspector", "sworn",
     "supervisor", ("Manhattan South",)),
    ("chief@demo.test", "Gerald Moran", "0001", "Chief of Department", "sworn", "admin", ()),
)  # fmt: skip
# The agency's default tours (agency time); the demo sign-ins' regular tours.
DEMO_TOURS = (("Day", time(7), time(15)), ("Evening", time(15), time(23)),
              ("Midnight", time(23), time(7)))  # fmt: skip
DEMO_PEOPLE_TOURS = {"officer@demo.test": "Day", "officer2@demo.test": "Evening",
                     "auxiliary@demo.test": "Day", "sergeant@demo.test": "Day",
                     "admin@demo.test": "Day", "commander@demo.test": "Day",
                     "chief@demo.test": "Day"}  # fmt: skip
FIRST_NAMES = (
    "James", "Maria", "Michael", "Aisha", "Robert", "Jennifer", "David", "Keisha", "Joseph",
    "Linda", "Daniel", "Rosa", "Anthony", "Mei", "Kevin", "Fatima", "Brian", "Sofia", "Thomas",
    "Nicole", "Christopher", "Priya", "Matthew", "Elena", "Luis", "Grace", "Patrick", "Yolanda",
    "Sean", "Tanisha", "Carlos", "Erin", "Vincent", "Olga", "Marcus", "Bridget", "Hector",
)  # fmt: skip
LAST_NAMES = (
    "Rodriguez", "Murphy", "Chen", "Johnson", "O'Brien", "Williams", "Gonzalez", "Kelly",
    "Smith", "Rivera", "Brown", "Nguyen", "Sullivan", "Martinez", "Davis", "Kim", "Walsh",
    "Garcia", "Jackson", "Patel", "Ramirez", "Russo", "Thompson", "Cruz", "Esposito", "Lee",
    "Moore", "Santiago", "Fitzgerald", "Torres", "Ali", "Romano", "Hernandez", "Kaplan",
)  # fmt: skip


def ordinal(number):
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix} Precinct"


def unit_paths():
    """Every unit path of the demo agency, the root first."""
    paths = [(AGENCY,)]
    for borough, precincts in PRECINCTS_BY_BOROUGH.items():
        paths.append((AGENCY, borough))
        for number in precincts:
            precinct = (AGENCY, borough, ordinal(number))
            paths.append(precinct)
            paths += [
                (*precinct, f"{ordinal(number)} {squad}")
                for squad in SQUADS_BY_PRECINCT.get(number, ())
            ]
    return paths


def record(line, email, name, badge, rank, member_class, role, path):
    return {
        "line": line,
        "email": email,
        "name": name,
        "badge": badge,
        "rank": rank,
        "member_class": member_class,
        "role": role,
        "unit_path": roster_rows.PATH_SEPARATOR.join(path),
    }


def generated_record(number, paths):
    """Member `number`: mostly sworn officers, one in 20 auxiliary, one in 20 civilian, one in 50
    a supervisor; spread round-robin over the precincts and squads."""
    name = f"{FIRST_NAMES[number % len(FIRST_NAMES)]} {LAST_NAMES[number * 7 % len(LAST_NAMES)]}"
    member_class, rank, role = "sworn", "Police Officer", "officer"
    if number % 20 == 0:
        member_class, rank = "auxiliary", "Auxiliary Police Officer"
    elif number % 20 == 1:
        member_class, rank = "civilian", "Police Administrative Aide"
    elif number % 50 == 2:
        rank, role = "Sergeant", "supervisor"
    elif number % 9 == 3:
        rank = "Detective"
    path = paths[number % len(paths)]
    return record(
        number + 1,
        f"officer{number:05d}@demo.test",
        name,
        f"{100000 + number}",
        rank,
        member_class,
        role,
        path,
    )


def seed_units():
    """The agency tree; returns the agency root and how many units were created."""
    units, created = ensure_units(unit_paths())
    return units[unit_key([AGENCY])], created


def seed_people(password_hash):
    """The demo sign-ins, their password (re)set to the demo password."""
    records = [
        record(line, *person[:-1], (AGENCY, *person[-1]))
        for line, person in enumerate(DEMO_PEOPLE, start=1)
    ]
    summary = roster.import_records(records, source="seed_demo", confirmed=True)
    emails = [person[0] for person in DEMO_PEOPLE]
    User.objects.filter(email__in=emails).update(password=password_hash, is_active=True)
    return summary


def seed_tours(agency):
    """The agency's default tours, where it has none yet (an admin's own stay as they are)."""
    if not Tour.objects.filter(unit=agency).exists():
        for position, (name, starts_at, ends_at) in enumerate(DEMO_TOURS):
            Tour.objects.create(
                unit=agency, name=name, starts_at=starts_at, ends_at=ends_at, position=position
            )
        tours.tours_changed(agency)


def seed_people_tours():
    """The demo sign-ins' tours (the desk people work days); generated members without one
    get Day, Evening or Midnight in turn."""
    for email, tour in DEMO_PEOPLE_TOURS.items():
        User.objects.filter(email=email).update(tour=tour)
    generated = User.objects.filter(email__startswith="officer0", email__endswith="@demo.test")
    turns = generated.filter(tour="").annotate(
        turn=Mod("pk", len(DEMO_TOURS), output_field=IntegerField())
    )
    for turn, (name, *_times) in enumerate(DEMO_TOURS):
        turns.filter(turn=turn).update(tour=name)


def seed_mfa():
    """Every demo sign-in enrolled in TOTP with DEMO_TOTP_SECRET (encrypted at rest like any
    other secret); passkeys are theirs to add."""
    people = User.objects.filter(email__in=[person[0] for person in DEMO_PEOPLE])
    for person in people:
        mfa.enrol_totp(person, DEMO_TOTP_SECRET)
    return len(people)


def seed_generated_officers(count, password_hash):
    """`count` generated members officer00001@demo.test...; the same `count` again adds none."""
    if not count:
        return None
    paths = [path for path in unit_paths() if len(path) >= 3]
    records = [generated_record(number, paths) for number in range(1, count + 1)]
    with tqdm(total=count, desc="members", unit=" people") as bar:
        summary = roster.import_records(
            records, source="seed_demo", confirmed=True, progress=bar.update
        )
    # New members share the one demo-password hash: hashing 36,000 times would take minutes.
    generated = User.objects.filter(email__startswith="officer", email__endswith="@demo.test")
    generated.filter(password__startswith="!").update(password=password_hash)
    return summary


def demo_people():
    """The demo sign-ins by role: "officer", "sergeant", "admin", ..."""
    people = User.objects.filter(email__in=[person[0] for person in DEMO_PEOPLE])
    return {user.email.split("@")[0]: user for user in people}


class Command(BaseCommand):
    help = "Create (or bring back) the demo agency, its units and demo accounts. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--officers", type=int, default=0, help="also generate N members (e.g. 36000)"
        )

    @transaction.atomic
    def handle(self, *args, officers, **options):
        password_hash = make_password(DEMO_PASSWORD)
        agency, units_created = seed_units()
        seed_tours(agency)
        people = seed_people(password_hash)
        seed_mfa()
        generated = seed_generated_officers(officers, password_hash)
        seed_people_tours()
        seed_agency_lists(agency)
        published = seed_bulletins(agency, demo_people(), now=timezone.now())
        seed_templates(agency, demo_people(), now=timezone.now())
        self.report(agency, units_created, people, generated)
        self.stdout.write(f"Story bulletins published: {published}")

    def report(self, agency, units_created, people, generated):
        units = Unit.objects.filter(path__startswith=agency.path).count()
        self.stdout.write(f"{agency}: {units} units ({units_created} created)")
        self.stdout.write(f"Demo accounts: {people}")
        if generated is not None:
            self.stdout.write(f"Generated members: {generated}")
        self.stdout.write(self.style.SUCCESS(f"Demo password: {DEMO_PASSWORD}"))
        self.stdout.write(
            self.style.SUCCESS(f"Demo TOTP secret of every demo sign-in: {DEMO_TOTP_SECRET}")
        )

"""The roster: people and units, imported from a CSV all or nothing. People one at a time are in
`portal.people`; units named by their path in `portal.units`.

An import validates every row before it writes anything, then writes set-based: one query loads
the units, a few load the people and badges it touches, and people are written with
`bulk_create` / `bulk_update`. Only missing units are created one by one (through treebeard),
and there are a few hundred of those at most.
"""

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models.functions import Lower

from portal import audit
from portal.models import User
from portal.people import send_set_password_links
from portal.units import ensure_units, load_units, unit_key

COLUMNS = ("email", "name", "badge", "rank", "member_class", "unit_path", "role")
PATH_SEPARATOR = " / "
BATCH_SIZE = 2000
UPDATE_BATCH_SIZE = 1000  # 10 parameters a person, well under SQLite's 32,766
LOOKUP_CHUNK = 5000  # keeps IN lists under SQLite's limit on query parameters
PERSON_FIELDS = ("name", "badge", "rank", "member_class", "role", "unit_id", "agency_id")
UPDATED_COLUMNS = ("email", "is_staff", *PERSON_FIELDS)
MAX_LENGTHS = {"email": 254, "name": 150, "badge": 20, "rank": 60}
UNIT_NAME_MAX_LENGTH = 120


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self):
        return f"line {self.line}: {self.reason}"


class RosterError(Exception):
    """The roster was refused; `errors` lists every problem with its CSV line number."""

    def __init__(self, errors):
        self.errors = sorted(errors, key=lambda error: error.line)
        super().__init__(f"{len(self.errors)} problem(s) in the roster; nothing was changed")


@dataclass(frozen=True)
class RosterRow:
    line: int
    email: str
    name: str
    badge: str
    rank: str
    member_class: str
    role: str
    unit_path: tuple[str, ...]

    @property
    def agency_key(self):
        return unit_key(self.unit_path[:1])


@dataclass
class RosterSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    units_created: int = 0
    new_people: list = field(default_factory=list, repr=False)

    def __str__(self):
        return (
            f"{self.created} people created, {self.updated} updated, "
            f"{self.unchanged} unchanged; {self.units_created} units created"
        )


def _chunks(items, size):
    items = list(items)
    return [items[start : start + size] for start in range(0, len(items), size)]


# Reading the file


def read_csv(lines: Iterable[str]) -> list[dict]:
    """Records (dicts with their CSV `line`) from CSV text; RosterError for a bad header."""
    reader = csv.reader(lines)
    try:
        header = [column.strip().lower() for column in next(reader, [])]
        _check_header(header)
        return [_record(reader.line_num, header, values) for values in reader if values]
    except UnicodeDecodeError:
        raise RosterError([RowError(reader.line_num + 1, "the file is not UTF-8 text")]) from None
    except csv.Error as error:
        raise RosterError([RowError(reader.line_num, f"unreadable CSV: {error}")]) from None


def _check_header(header):
    if not any(header):
        raise RosterError([RowError(1, "the file is empty: a header row is required")])
    missing = [column for column in COLUMNS if column not in header]
    unknown = [column for column in header if column not in COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if problems:
        raise RosterError([RowError(1, f"header: {'; '.join(problems)}")])


def _record(line, header, values):
    record = dict(zip(header, values, strict=False))
    record["line"] = line
    if len(values) != len(header):
        record["field_count"] = len(values)
    return record


# Validating rows


def _row_from_record(record):
    """A RosterRow and an empty list, or None and the row's problems."""
    line = record["line"]
    values = {column: (record.get(column) or "").strip() for column in COLUMNS}
    problems = []
    if "field_count" in record:
        problems.append(f"expected {len(COLUMNS)} fields, found {record['field_count']}")
    email = values["email"].lower()
    problems += _email_problems(email)
    if not values["name"]:
        problems.append("name is empty")
    problems += _length_problems(values)
    member_class = values["member_class"].lower()
    if member_class not in User.MemberClass.values:
        problems.append(_choice_problem("member class", member_class, User.MemberClass))
    role = values["role"].lower()
    if role not in User.Role.values:
        problems.append(_choice_problem("role", role, User.Role))
    unit_path = tuple(name.strip() for name in values["unit_path"].split(PATH_SEPARATOR))
    problems += _unit_path_problems(unit_path)
    if problems:
        return None, [RowError(line, problem) for problem in problems]
    row = RosterRow(
        line, email, values["name"], values["badge"], values["rank"], member_class, role, unit_path
    )
    return row, []


def _email_problems(email):
    if not email:
        return ["email is empty"]
    try:
        validate_email(email)
    except ValidationError:
        return [f"email {email!r} is not a valid address"]
    return []


def _length_problems(values):
    return [
        f"{column} is longer than {limit} characters"
        for column, limit in MAX_LENGTHS.items()
        if len(values[column]) > limit
    ]


def _choice_problem(label, value, choices):
    if not value:
        return f"{label} is empty"
    return f"{label} {value!r} is not one of {', '.join(choices.values)}"


def _unit_path_problems(unit_path):
    if unit_path == ("",):
        return ["unit path is empty"]
    if "" in unit_path:
        return [f"unit path has an empty unit name (separate names with {PATH_SEPARATOR!r})"]
    too_long = [name for name in unit_path if len(name) > UNIT_NAME_MAX_LENGTH]
    return [f"unit name {name[:40]!r}... is too long" for name in too_long]


def _duplicate_problems(rows):
    errors, seen_emails, seen_badges = [], {}, {}
    for row in rows:
        first = seen_emails.setdefault(row.email, row.line)
        if first != row.line:
            errors.append(RowError(row.line, f"email {row.email} is already on line {first}"))
        if not row.badge:
            continue
        first = seen_badges.setdefault((row.agency_key, row.badge), row.line)
        if first != row.line:
            errors.append(
                RowError(row.line, f"badge {row.badge} is already on line {first} in this agency")
            )
    return errors


@dataclass
class _Existing:
    """What the database already holds for the rows of one import."""

    units: dict  # unit key -> Unit
    people: dict  # email -> User
    badges: dict  # (agency key, badge) -> email of the holder

    @classmethod
    def load(cls, rows):
        units = load_units()
        people = _load_people(row.email for row in rows)
        badges = _load_badges(rows, units)
        return cls(units, people, badges)


def _load_people(emails):
    people = {}
    for chunk in _chunks(set(emails), LOOKUP_CHUNK):
        queryset = User.objects.annotate(email_key=Lower("email")).filter(email_key__in=chunk)
        people.update((person.email_key, person) for person in queryset)
    return people


def _load_badges(rows, units):
    agency_keys = {unit.pk: key for key, unit in units.items() if len(key) == 1}
    badges = {row.badge for row in rows if row.badge}
    holders = {}
    for chunk in _chunks(badges, LOOKUP_CHUNK):
        queryset = User.objects.filter(agency_id__in=agency_keys, badge__in=chunk)
        for agency_id, badge, email in queryset.values_list("agency_id", "badge", "email"):
            holders[(agency_keys[agency_id], badge)] = email.lower()
    return holders


def _database_problems(rows, existing, scope):
    in_file = {row.email for row in rows}
    errors = []
    for row in rows:
        holder = existing.badges.get((row.agency_key, row.badge))
        if row.badge and holder not in (None, row.email) and holder not in in_file:
            errors.append(RowError(row.line, f"badge {row.badge} belongs to {holder}"))
        errors += _scope_problems(row, existing, scope)
    return errors


def _scope_problems(row, existing, scope):
    if scope is None:
        return []
    if row.agency_key != unit_key([scope.name]):
        return [RowError(row.line, f"unit path must start with {scope.name!r}")]
    person = existing.people.get(row.email)
    if person is not None and person.agency_id not in (None, scope.pk):
        return [RowError(row.line, f"{row.email} belongs to another agency")]
    return []


def validate_records(records, *, scope=None):
    """The rows of `records` and what the database holds for them; RosterError lists every
    problem. `scope`, an agency, limits the import to that agency."""
    rows, errors = [], []
    for record in records:
        row, problems = _row_from_record(record)
        errors += problems
        if row is not None:
            rows.append(row)
    errors += _duplicate_problems(rows)
    existing = _Existing.load(rows)
    errors += _database_problems(rows, existing, scope)
    if errors:
        raise RosterError(errors)
    return rows, existing


# Writing


def _target_fields(row, units):
    return {
        "name": row.name,
        "badge": row.badge,
        "rank": row.rank,
        "member_class": row.member_class,
        "role": row.role,
        "unit_id": units[unit_key(row.unit_path)].pk,
        "agency_id": units[row.agency_key].pk,
    }


def _plan_people(rows, existing):
    new, changed, unchanged = [], [], 0
    for row in rows:
        target = _target_fields(row, existing.units)
        person = existing.people.get(row.email)
        if person is None:
            person = User(email=row.email, password=make_password(None))
            _apply_fields(person, target)
            new.append(person)
        elif _apply_fields(person, target):
            changed.append(person)
        else:
            unchanged += 1
    return new, changed, unchanged


def _apply_fields(person, target):
    """Set the row's fields on `person`; True when anything changed."""
    target = {
        **target,
        "email": person.email.lower(),
        "is_staff": person.is_superuser or target["role"] == User.Role.ADMIN,
    }
    differs = any(getattr(person, name) != value for name, value in target.items())
    for name, value in target.items():
        setattr(person, name, value)
    return differs


def _update_people(people):
    """One UPDATE ... FROM a VALUES list for a batch of people.

    `bulk_update` builds a CASE WHEN per person and field: minutes for 36,000 people. This
    form runs on PostgreSQL and on SQLite >= 3.33 (the embedded default).
    """
    quote = connection.ops.quote_name
    table, columns = quote(User._meta.db_table), ["id", *UPDATED_COLUMNS]
    row = f"({', '.join(['%s'] * len(columns))})"
    assignments = ", ".join(f"{quote(column)} = v.{quote(column)}" for column in UPDATED_COLUMNS)
    sql = (
        f"WITH v ({', '.join(quote(column) for column in columns)}) "
        f"AS (VALUES {', '.join([row] * len(people))}) "
        f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{quote('id')} = v.{quote('id')}"
    )
    params = [getattr(person, column) for person in people for column in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _write_people(new, changed, progress):
    # Free badges that change hands first, so a swap inside one file never trips the constraint.
    for batch in _chunks(changed, LOOKUP_CHUNK):
        User.objects.filter(pk__in=[person.pk for person in batch]).update(badge="")
    for batch in _chunks(changed, UPDATE_BATCH_SIZE):
        _update_people(batch)
        progress(len(batch))
    for batch in _chunks(new, BATCH_SIZE):
        User.objects.bulk_create(batch)
        progress(len(batch))


@transaction.atomic
def import_records(
    records,
    *,
    by=None,
    request=None,
    scope=None,
    send_invites=False,
    source="",
    progress: Callable[[int], object] | None = None,
):
    """Create or update the people of `records` (dicts keyed by COLUMNS, with `line`).

    All or nothing: RosterError lists every bad row and nothing is written. New people get an
    unusable password; with `send_invites` they are emailed a set-password link after commit.
    """
    rows, existing = validate_records(records, scope=scope)
    _, units_created = ensure_units([row.unit_path for row in rows], existing.units)
    new, changed, unchanged = _plan_people(rows, existing)
    progress = progress or (lambda count: None)
    progress(unchanged)
    _write_people(new, changed, progress)
    summary = RosterSummary(len(new), len(changed), unchanged, units_created, new)
    audit.record(
        "roster.import",
        by=by,
        request=request,
        source=source,
        rows=len(rows),
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        units_created=units_created,
        send_invites=send_invites,
    )
    if send_invites and new:
        transaction.on_commit(lambda: send_set_password_links(new, request=request))
    return summary


def import_roster(lines, **options):
    """Import a roster CSV (an iterable of text lines, e.g. a file opened with newline="")."""
    return import_records(read_csv(lines), **options)

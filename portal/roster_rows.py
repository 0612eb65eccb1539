"""Reading a roster file and checking each of its rows on its own (the checks against the
database, and the import itself, are `portal.roster`'s)."""

import csv
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from portal.models import User
from portal.units import unit_key
from portal.validators import control_character_in

COLUMNS = ("email", "name", "badge", "rank", "member_class", "unit_path", "role")
# Optional: a file without it leaves everyone's regular tour as it is; with it, an empty value
# means no tour. Checked against the unit's tours by `portal.roster`.
OPTIONAL_COLUMNS = ("tour",)
TOUR_MAX_LENGTH = 40
PATH_SEPARATOR = " / "
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
    tour: str | None = None  # None: the file has no tour column

    @property
    def agency_key(self):
        return unit_key(self.unit_path[:1])


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
    unknown = [column for column in header if column not in (*COLUMNS, *OPTIONAL_COLUMNS)]
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
        record["header_count"] = len(header)
    return record


# Validating rows


def row_from_record(record):
    """A RosterRow and an empty list, or None and the row's problems."""
    line = record["line"]
    values = {column: (record.get(column) or "").strip() for column in COLUMNS}
    problems = []
    if "field_count" in record:
        expected = record.get("header_count", len(COLUMNS))
        problems.append(f"expected {expected} fields, found {record['field_count']}")
    email = values["email"].lower()
    problems += _email_problems(email)
    if not values["name"]:
        problems.append("name is empty")
    problems += _length_problems(values)
    problems += _control_character_problems(values)
    member_class = values["member_class"].lower()
    if member_class not in User.MemberClass.values:
        problems.append(_choice_problem("member class", member_class, User.MemberClass))
    role = values["role"].lower()
    if role not in User.Role.values:
        problems.append(_choice_problem("role", role, User.Role))
    unit_path = tuple(name.strip() for name in values["unit_path"].split(PATH_SEPARATOR))
    problems += _unit_path_problems(unit_path)
    tour = (record.get("tour") or "").strip() if "tour" in record else None
    problems += _tour_problems(tour)
    if problems:
        return None, [RowError(line, problem) for problem in problems]
    row = RosterRow(
        line, email, values["name"], values["badge"], values["rank"], member_class, role, unit_path,
        tour,
    )  # fmt: skip
    return row, []


def _tour_problems(tour):
    if not tour:
        return []
    if len(tour) > TOUR_MAX_LENGTH:
        return [f"tour is longer than {TOUR_MAX_LENGTH} characters"]
    if control_character_in(tour) is not None:
        return ["tour holds an invisible control character"]
    return []


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


def _control_character_problems(values):
    return [
        f"{column} holds an invisible control character"
        for column in ("name", "badge", "rank", "unit_path")
        if control_character_in(values[column]) is not None
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


def duplicate_problems(rows):
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

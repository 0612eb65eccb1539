"""The roster: people and units, imported from a CSV all or nothing. People one at a time are in
`portal.people`; units named by their path in `portal.units`.

An import validates every row before it writes anything, then writes set-based: one query loads
the units, a few load the people and badges it touches, and people are written with
`bulk_create` / `bulk_update`. A unit path that names no existing unit is refused, with the
nearest existing name as a suggestion, unless the import may create units (`create_units`); the
units it will create are then listed for confirmation like a change of role, and created one by
one (through treebeard), a few hundred at most (issue 19).

A row names an existing person by the agency's stable key, the badge, never by email alone (an
address is not proof of who someone is); changes to anyone's role, agency or email are made only
once confirmed (issue 18).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat, Lower

from portal import audit, tours
from portal.models import User
from portal.people import send_set_password_links
from portal.roster_rows import (
    PATH_SEPARATOR,
    RosterError,
    RowError,
    duplicate_problems,
    read_csv,
    row_from_record,
)
from portal.units import ensure_units, load_units, missing_units, unit_key, unknown_unit_problems

BATCH_SIZE = 2000
UPDATE_BATCH_SIZE = 1000  # 11 parameters a person, well under SQLite's 32,766
LOOKUP_CHUNK = 5000  # keeps IN lists under SQLite's limit on query parameters
PERSON_FIELDS = ("name", "badge", "rank", "member_class", "role", "unit_id", "agency_id", "tour")
UPDATED_COLUMNS = ("email", "is_staff", *PERSON_FIELDS)


@dataclass
class RosterSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    units_created: int = 0
    new_people: list = field(default_factory=list, repr=False)
    new_units: list = field(default_factory=list, repr=False)  # their paths, as text

    def __str__(self):
        return (
            f"{self.created} people created, {self.updated} updated, "
            f"{self.unchanged} unchanged; {self.units_created} units created"
        )


def _chunks(items, size):
    items = list(items)
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass
class _Existing:
    """What the database already holds for the rows of one import (one object per person)."""

    units: dict  # unit key -> Unit
    by_email: dict  # email -> User
    by_badge: dict  # (agency key, badge) -> User
    agency_keys: dict  # agency id -> agency key

    @classmethod
    def load(cls, rows):
        units = load_units()
        agency_keys = {unit.pk: key for key, unit in units.items() if len(key) == 1}
        people = {}
        by_email = {
            email: people.setdefault(person.pk, person)
            for email, person in _load_by_email(row.email for row in rows).items()
        }
        by_badge = {
            key: people.setdefault(person.pk, person)
            for key, person in _load_by_badge(rows, agency_keys).items()
        }
        return cls(units, by_email, by_badge, agency_keys)

    def agency_name(self, key):
        unit = self.units.get(key)
        return unit.name if unit is not None else ""


def _load_by_email(emails):
    people = {}
    for chunk in _chunks(set(emails), LOOKUP_CHUNK):
        queryset = User.objects.annotate(email_key=Lower("email")).filter(email_key__in=chunk)
        people.update((person.email_key, person) for person in queryset)
    return people


def _load_by_badge(rows, agency_keys):
    badges = {row.badge for row in rows if row.badge}
    holders = {}
    for chunk in _chunks(badges, LOOKUP_CHUNK):
        for person in User.objects.filter(agency_id__in=agency_keys, badge__in=chunk):
            holders[(agency_keys[person.agency_id], person.badge)] = person
    return holders


# Matching rows to people: on the agency's stable key, the badge, never on the email alone. An
# email names a person only when it agrees with their badge; an account with no agency is
# never taken over; an agency admin's import touches no superuser and no other agency.


def _match_people(rows, existing, scope):
    """The existing person of each row ({line: User}) and the rows' problems."""
    by_badge = {row.line: existing.by_badge.get((row.agency_key, row.badge)) for row in rows}
    # People whose badge row gives them another address free their current one for another row.
    leaving = {
        person.pk
        for row in rows
        if (person := by_badge[row.line]) is not None and person.email.lower() != row.email
    }
    matches, errors = {}, []
    for row in rows:
        person, problem = _match_row(row, by_badge[row.line], existing, leaving)
        problem = problem or _scope_problem(row, person, scope)
        if problem:
            errors.append(RowError(row.line, problem))
        else:
            matches[row.line] = person
    return matches, errors


def _match_row(row, person, existing, leaving):
    holder = existing.by_email.get(row.email)
    if holder is None or holder.pk in leaving:
        return person, ""
    if person is not None and holder.pk != person.pk:
        return None, _belongs_to(row, holder)
    if holder.agency_id is None:
        return None, (
            f"email {row.email} belongs to an account with no unit, which an import never "
            "takes over: give it a unit in the admin first, or use another address"
        )
    if holder.badge != row.badge:
        return None, _belongs_to(row, holder)
    return holder, ""


def _belongs_to(row, holder):
    badge = f"badge {holder.badge}" if holder.badge else "no badge"
    return (
        f"email {row.email} belongs to {holder.name} ({badge}); people are matched by badge, "
        "so correct the row or that person's record first"
    )


def _scope_problem(row, person, scope):
    if scope is None:
        return ""
    if row.agency_key != unit_key([scope.name]):
        return f"unit path must start with {scope.name!r}"
    if person is not None and person.agency_id != scope.pk:
        return f"{person.email} belongs to another agency"
    if person is not None and person.is_superuser:
        return f"{person.email} is a superuser: only a superuser may change them"
    return ""


# Changes that need a confirmation


@dataclass(frozen=True)
class RosterChange:
    """A change to an existing person's role, agency or email: made only once confirmed."""

    line: int
    person_id: int
    person: str
    field: str
    old: str
    new: str

    @property
    def key(self):
        return (self.person_id, self.field, self.old, self.new)

    def __str__(self):
        return f"line {self.line}: {self.person}: {self.field} {self.old or '(none)'} -> {self.new}"


@dataclass(frozen=True)
class NewUnit:
    """A unit the import would create (only with `create_units`): made only once confirmed."""

    line: int  # the first row that names it
    path: tuple

    @property
    def name(self):
        return PATH_SEPARATOR.join(self.path)

    @property
    def key(self):
        return (None, "new unit", "", self.name)

    def __str__(self):
        return f"line {self.line}: new unit {self.name}"


class ConfirmationNeeded(Exception):
    """The import would change someone's role, agency or email, or create units; nothing was
    changed."""

    def __init__(self, changes, new_units=()):
        self.changes = list(changes)
        self.new_units = list(new_units)
        parts = []
        if self.changes:
            parts.append(f"{len(self.changes)} change(s) to role, agency or email")
        if self.new_units:
            parts.append(f"{len(self.new_units)} new unit(s)")
        super().__init__(f"{' and '.join(parts)} need confirming; nothing was changed")

    def __iter__(self):
        return iter([*self.changes, *self.new_units])


def _changes(rows, matches, existing):
    changes = []
    for row in rows:
        person = matches.get(row.line)
        if person is not None:
            changes += _person_changes(row, person, existing)
    return changes


def _person_changes(row, person, existing):
    values = [("role", person.role, row.role), ("email", person.email.lower(), row.email)]
    old_agency = existing.agency_keys.get(person.agency_id)
    if old_agency != row.agency_key:
        new_agency = existing.agency_name(row.agency_key) or row.unit_path[0]
        values.insert(1, ("agency", existing.agency_name(old_agency), new_agency))
    return [
        RosterChange(row.line, person.pk, str(person), name, old, new)
        for name, old, new in values
        if old != new
    ]


def _unconfirmed(changes, confirmed):
    if confirmed is True:
        return []
    keys = {tuple(key) for key in confirmed or ()}
    return [change for change in changes if change.key not in keys]


def _unit_problems(rows, units, scope):
    """A row error for each row whose unit path names no existing unit (a row outside the
    scope has its own error already)."""
    agency = unit_key([scope.name]) if scope is not None else None
    rows = [row for row in rows if agency is None or row.agency_key == agency]
    problems = unknown_unit_problems([row.unit_path for row in rows], units)
    return [
        RowError(row.line, problems[row.unit_path]) for row in rows if row.unit_path in problems
    ]


def _nearest_unit(unit_path, units):
    """The unit of `unit_path`, or (a unit to create) the nearest existing one above it."""
    for depth in range(len(unit_path), 0, -1):
        unit = units.get(unit_key(unit_path[:depth]))
        if unit is not None:
            return unit
    return None


def _tour_problems(rows, units):
    """A row error for each row naming a tour its unit does not have (one cache read per
    agency: `tours.TourBook`)."""
    book, problems = tours.TourBook(), []
    for row in rows:
        if not row.tour:
            continue
        unit, agency = _nearest_unit(row.unit_path, units), units.get(row.agency_key)
        if unit is None or agency is None:
            problems.append(RowError(row.line, f"tour {row.tour!r}: the new agency has no tours"))
        elif book.find(unit, row.tour, agency_id=agency.pk) is None:
            names = ", ".join(tour.name for tour in book.tours_for(unit, agency_id=agency.pk))
            reason = f"its tours are {names}" if names else "it has no tours"
            problems.append(RowError(row.line, f"tour {row.tour!r} is not a tour of {unit.name}"
                                               f" ({reason})"))  # fmt: skip
    return problems


def _new_units(rows, units):
    first_lines = {}
    for row in rows:
        for depth in range(1, len(row.unit_path) + 1):
            first_lines.setdefault(unit_key(row.unit_path[:depth]), row.line)
    return [
        NewUnit(first_lines[unit_key(path)], path)
        for path in missing_units([row.unit_path for row in rows], units)
    ]


@dataclass
class RosterPlan:
    """The valid rows of an import, what the database holds for them, the person each row names
    and the changes to role, agency or email it would make."""

    rows: list
    existing: _Existing
    matches: dict
    changes: list
    new_units: list = field(default_factory=list)


def validate_records(records, *, scope=None, create_units=False):
    """The plan of an import of `records`; RosterError lists every problem. `scope`, an agency,
    limits the import to that agency. A unit path naming no existing unit is a problem unless
    `create_units`: the plan then lists the units to create."""
    rows, errors = [], []
    for record in records:
        row, problems = row_from_record(record)
        errors += problems
        if row is not None:
            rows.append(row)
    errors += duplicate_problems(rows)
    existing = _Existing.load(rows)
    matches, problems = _match_people(rows, existing, scope)
    errors += problems
    if not create_units:
        errors += _unit_problems(rows, existing.units, scope)
    errors += _tour_problems(rows, existing.units)
    if errors:
        raise RosterError(errors)
    changes = _changes(rows, matches, existing)
    return RosterPlan(rows, existing, matches, changes, _new_units(rows, existing.units))


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
        **({"tour": row.tour} if row.tour is not None else {}),
    }


def _plan_people(plan):
    new, changed, unchanged = [], [], 0
    for row in plan.rows:
        target = {**_target_fields(row, plan.existing.units), "email": row.email}
        person = plan.matches.get(row.line)
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
    # Free the badges and emails of the people changed first, so that a swap inside one file
    # never trips a unique constraint; the UPDATE below sets them all again.
    placeholder = Concat(Cast("id", CharField()), Value("@roster-import.invalid"))
    for batch in _chunks(changed, LOOKUP_CHUNK):
        people = User.objects.filter(pk__in=[person.pk for person in batch])
        people.update(badge="", email=placeholder)
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
    confirmed=(),
    create_units=False,
    progress: Callable[[int], object] | None = None,
):
    """Create or update the people of `records` (dicts keyed by COLUMNS, with `line`).

    All or nothing: RosterError lists every bad row and nothing is written. A row names an
    existing person by badge within the agency, and an existing unit, unless `create_units`.
    A change to someone's role, agency or email, and a unit to create, is made only when
    `confirmed` (True, or the `key`s of the RosterChanges and NewUnits shown) covers it;
    otherwise ConfirmationNeeded lists them and nothing is written. New people get an unusable
    password; with `send_invites` they are emailed a set-password link after commit.
    """
    plan = validate_records(records, scope=scope, create_units=create_units)
    unconfirmed = _unconfirmed(plan.changes, confirmed)
    new_units = _unconfirmed(plan.new_units, confirmed)
    if unconfirmed or new_units:
        raise ConfirmationNeeded(unconfirmed, new_units)
    rows = plan.rows
    _, units_created = ensure_units([row.unit_path for row in rows], plan.existing.units)
    new, changed, unchanged = _plan_people(plan)
    progress = progress or (lambda count: None)
    progress(unchanged)
    _write_people(new, changed, progress)
    new_unit_names = [unit.name for unit in plan.new_units]
    summary = RosterSummary(len(new), len(changed), unchanged, units_created, new, new_unit_names)
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
        new_units=new_unit_names,
        send_invites=send_invites,
        changes=[asdict(change) for change in plan.changes],
    )
    if send_invites and new:
        transaction.on_commit(lambda: send_set_password_links(new, request=request))
    return summary


def import_roster(lines, **options):
    """Import a roster CSV (an iterable of text lines, e.g. a file opened with newline="")."""
    return import_records(read_csv(lines), **options)

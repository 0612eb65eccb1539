"""What importing a roster would change, written nowhere: the people it adds and changes, the
changes to role, agency or email and the units it would create (to be confirmed), and how many
people of the agencies it names it leaves as they are (issue 19)."""

from dataclasses import dataclass

from portal.models import User
from portal.roster import validate_records
from portal.roster_rows import PATH_SEPARATOR

PREVIEW_FIELDS = (
    ("name", "name"), ("badge", "badge"), ("rank", "rank"), ("member_class", "class"),
    ("role", "role"), ("email", "email"),
)  # fmt: skip


@dataclass
class PersonUpdate:
    line: int
    person: str
    differences: list  # (what, old, new)


@dataclass
class RosterPreview:
    """What importing a roster would do: the people it adds and changes, the changes and units
    to confirm, and how many people of the agencies it names it leaves as they are."""

    new_people: list  # RosterRows
    updated_people: list  # PersonUpdates
    unchanged: int
    changes: list  # RosterChanges to confirm
    new_units: list  # NewUnits to confirm
    not_in_file: int

    @property
    def keys(self):
        return [item.key for item in [*self.changes, *self.new_units]]


def preview_records(records, *, scope=None, create_units=False):
    """The RosterPreview of importing `records`; RosterError lists every problem."""
    plan = validate_records(records, scope=scope, create_units=create_units)
    paths = _unit_paths(plan.existing.units)
    new, updated = [], []
    for row in plan.rows:
        person = plan.matches.get(row.line)
        if person is None:
            new.append(row)
        elif differences := _differences(row, person, paths):
            updated.append(PersonUpdate(row.line, str(person), differences))
    unchanged = len(plan.rows) - len(new) - len(updated)
    not_in_file = _not_in_file(plan)
    return RosterPreview(new, updated, unchanged, plan.changes, plan.new_units, not_in_file)


def _unit_paths(units):
    """{unit id: its path as text} for every unit."""
    return {
        unit.pk: PATH_SEPARATOR.join(units[key[:depth]].name for depth in range(1, len(key) + 1))
        for key, unit in units.items()
    }


def _differences(row, person, paths):
    """(what, old, new) for each field the row changes; a unit is named whatever the case."""
    values = [(label, getattr(person, name), getattr(row, name)) for name, label in PREVIEW_FIELDS]
    values[-1] = ("email", person.email.lower(), row.email)
    differences = [(label, old, new) for label, old, new in values if old != new]
    old_unit, new_unit = paths.get(person.unit_id, ""), PATH_SEPARATOR.join(row.unit_path)
    if old_unit.casefold() != new_unit.casefold():
        differences.append(("unit", old_unit, new_unit))
    return differences


def _not_in_file(plan):
    """Active people of the agencies the file names whom no row names: the import leaves them
    as they are (it never deactivates anyone)."""
    agencies = {
        plan.existing.units[row.agency_key].pk
        for row in plan.rows
        if row.agency_key in plan.existing.units
    }
    named = sum(
        1
        for person in plan.matches.values()
        if person is not None and person.is_active and person.agency_id in agencies
    )
    return User.objects.filter(agency_id__in=agencies, is_active=True).count() - named

"""Units named by their path from the agency root ("Metro PD / Manhattan South / 17th Precinct"),
as a roster names them: every unit by its key in one query, the missing ones created."""

from portal.models import Unit

KIND_BY_DEPTH = (Unit.Kind.AGENCY, Unit.Kind.BOROUGH, Unit.Kind.PRECINCT)


def unit_key(names):
    return tuple(name.casefold() for name in names)


def kind_for_depth(depth):
    return KIND_BY_DEPTH[depth - 1] if depth <= len(KIND_BY_DEPTH) else Unit.Kind.SQUAD


def load_units():
    """Every unit by its key (its path of casefolded names from the agency root), one query."""
    keys_by_path, units = {}, {}
    for unit in Unit.objects.order_by("path").only("id", "path", "name", "depth"):
        key = keys_by_path.get(unit.path[: -Unit.steplen], ()) + unit_key([unit.name])
        keys_by_path[unit.path] = key
        units.setdefault(key, unit)
    return units


def ensure_units(paths, units=None):
    """The units for `paths` (tuples of names from the agency root), creating the missing ones
    parent first; returns (units by key, number created)."""
    units = load_units() if units is None else units
    wanted = {
        unit_key(path[:depth]): path[:depth] for path in paths for depth in range(1, len(path) + 1)
    }
    created = 0
    for key in sorted(set(wanted) - set(units), key=lambda key: (len(key), key)):
        units[key] = _add_unit(wanted[key], units.get(key[:-1]))
        created += 1
    return units, created


def _add_unit(path, parent):
    fields = {"name": path[-1], "kind": kind_for_depth(len(path))}
    if parent is None:
        return Unit.objects.add_root(create_kwargs=fields)
    # treebeard re-reads the parent by pk, so a path shifted by a sorted insert does not matter
    return Unit.objects.add_child(parent, create_kwargs=fields)

"""Units named by their path from the agency root ("Metro PD / Manhattan South / 17th Precinct"),
as a roster names them: every unit by its key in one query, an unknown one refused with the
nearest name beside it, the missing ones created only when asked (issue 19)."""

import difflib

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


def missing_units(paths, units):
    """The paths (tuples of names) of the units `paths` name that `units` lacks, parent first,
    each spelled as its first path spells it."""
    wanted = {}
    for path in paths:
        for depth in range(1, len(path) + 1):
            wanted.setdefault(unit_key(path[:depth]), path[:depth])
    missing = sorted(set(wanted) - set(units), key=lambda key: (len(key), key))
    return [wanted[key] for key in missing]


def unknown_unit_problems(paths, units):
    """{path: why it names no existing unit} for those of `paths` (tuples of names) that name
    none; each distinct path is looked at once."""
    problems = {}
    for path in set(paths):
        problem = unknown_unit_problem(path, units)
        if problem:
            problems[path] = problem
    return problems


def unknown_unit_problem(path, units):
    """Why `path` names no existing unit ("no unit 'Manhatan South' under 'Metro Police
    Department'; did you mean 'Manhattan South'?"), or "" when it names one."""
    for depth in range(1, len(path) + 1):
        if unit_key(path[:depth]) in units:
            continue
        name, parent = path[depth - 1], units.get(unit_key(path[: depth - 1]))
        where = f"no unit {name!r} under {parent.name!r}" if parent else f"no agency {name!r}"
        suggestion = closest_name(name, _children_names(units, unit_key(path[: depth - 1])))
        return f"{where}; did you mean {suggestion!r}?" if suggestion else where
    return ""


def closest_name(name, names):
    """The name in `names` closest to `name` whatever the case, or None when none is close."""
    by_folded = {candidate.casefold(): candidate for candidate in names}
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=1)
    return by_folded[close[0]] if close else None


def _children_names(units, parent_key):
    depth = len(parent_key) + 1
    return sorted(
        unit.name for key, unit in units.items() if len(key) == depth and key[:-1] == parent_key
    )


def ensure_units(paths, units=None):
    """The units for `paths` (tuples of names from the agency root), creating the missing ones
    parent first; returns (units by key, number created)."""
    units = load_units() if units is None else units
    created = missing_units(paths, units)
    for path in created:
        units[unit_key(path)] = _add_unit(path, units.get(unit_key(path[:-1])))
    return units, len(created)


def _add_unit(path, parent):
    fields = {"name": path[-1], "kind": kind_for_depth(len(path))}
    if parent is None:
        return Unit.objects.add_root(create_kwargs=fields)
    # treebeard re-reads the parent by pk, so a path shifted by a sorted insert does not matter
    return Unit.objects.add_child(parent, create_kwargs=fields)

"""Who is in whose scope, and what a role may do.

Capabilities come with a role (Django permissions granted by `portal.backends.RoleBackend`);
the scope says where they apply. A supervisor acts on the subtree of the unit they command
(their own unit); an admin acts on their whole agency; a superuser everywhere.
"""

from django.db.models import F, Q, Subquery
from django.db.models.functions import Substr

from portal.models import Unit, User

AUTHOR = "bulletins.author_bulletin"
VIEW_COVERAGE = "bulletins.view_coverage"
MANAGE_PEOPLE = "portal.manage_people"
VIEW_AUDIT = "portal.view_audit_trail"

ROLE_CAPABILITIES = {
    User.Role.OFFICER: frozenset(),
    User.Role.SUPERVISOR: frozenset({AUTHOR, VIEW_COVERAGE}),
    User.Role.ADMIN: frozenset({AUTHOR, VIEW_COVERAGE, MANAGE_PEOPLE, VIEW_AUDIT}),
    User.Role.AUDITOR: frozenset({VIEW_AUDIT}),
}
SCOPED_ROLES = (User.Role.ADMIN, User.Role.SUPERVISOR)


def scope_root(user):
    """The unit whose subtree `user` acts on, or None when they act on no unit (cached on the
    user object for the request: `_scope`)."""
    if not hasattr(user, "_scope_root"):
        _scope(user, with_ids=False)
    return user._scope_root


def _scope(user, *, with_ids):
    """The scope of `user` in one query: for an admin the agency's root (and, `with_ids`, every
    unit of the agency); for a supervisor their unit and the units below it. The person's own
    unit comes with it (the page header names it)."""
    user._scope_root = None
    if user.is_superuser or not user.unit_id or user.role not in SCOPED_ROLES:
        user._scope_unit_ids = []
        return
    agency_wide = user.role == User.Role.ADMIN
    fields = [field.attname for field in Unit._meta.concrete_fields]
    rows = None
    if agency_wide and not with_ids and user.agency_id:
        # The agency kept on the person, if it is still their unit's root (else read below).
        rows = _rows(Unit.objects.filter(pk__in={user.agency_id, user.unit_id}), fields)
        if not (rows and rows[0][0] == user.agency_id and _is_root_of(rows, user)):
            rows = None
    if rows is None:
        prefix = Substr("path", 1, Unit.steplen) if agency_wide else F("path")
        own = Subquery(Unit.objects.filter(pk=user.unit_id).values(prefix=prefix))
        if agency_wide and not with_ids:
            units = Unit.objects.filter(Q(path=own) | Q(pk=user.unit_id))
        else:
            units = Unit.objects.filter(path__startswith=own)
        rows = _rows(units, fields)
    if not rows:
        user._scope_unit_ids = []
        return
    user._scope_root = Unit.from_db("default", fields, rows[0])
    if with_ids or not agency_wide:
        user._scope_unit_ids = [row[0] for row in rows]
    if not User.unit.is_cached(user):  # no query for the person's own unit later
        own_row = next(row for row in rows if row[0] == user.unit_id)
        User.unit.field.set_cached_value(user, Unit.from_db("default", fields, own_row))


def _rows(units, fields):
    # Tuples: a whole agency's units may be read, two of them used as objects.
    return list(units.order_by("path").values_list(*fields))


def _is_root_of(rows, user):
    """Whether rows[0] (path order) is an agency root above the person's own unit, in `rows`."""
    root_path, depth = rows[0][1], rows[0][2]
    own = next((row for row in rows if row[0] == user.unit_id), None)
    return depth == 1 and own is not None and own[1].startswith(root_path)


def scope_units(user):
    """The units `user` may address and oversee, as one queryset."""
    if not user.is_authenticated or not user.is_active:
        return Unit.objects.none()
    if user.is_superuser:
        return Unit.objects.all()
    root = scope_root(user)
    if root is None:
        return Unit.objects.none()
    return Unit.objects.filter(path__startswith=root.path)


def scope_unit_ids(user):
    """The ids of `scope_units(user)` (cached on the user object for the request). Recipient
    rows are narrowed with `unit_id IN (...)`, which the (bulletin, unit) index answers directly,
    rather than with a join the planner may misjudge for a bulletin written a moment ago."""
    if not hasattr(user, "_scope_unit_ids"):
        if user.is_superuser or not user.is_authenticated or not user.is_active:
            user._scope_unit_ids = list(scope_units(user).values_list("pk", flat=True))
        else:
            _scope(user, with_ids=True)
    return user._scope_unit_ids


def is_in_scope(user, unit):
    if not user.is_authenticated or not user.is_active or unit is None:
        return False
    if user.is_superuser:
        return True
    root = scope_root(user)
    return root is not None and unit.path.startswith(root.path)


def people_in_scope(user):
    units = scope_units(user)
    if user.is_superuser:
        return User.objects.all()
    return User.objects.filter(unit__in=units)


def can_manage_person(user, person):
    return user.has_perm(MANAGE_PEOPLE) and (user.is_superuser or is_in_scope(user, person.unit))

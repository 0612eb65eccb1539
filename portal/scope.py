"""Who is in whose scope, and what a role may do.

Capabilities come with a role (Django permissions granted by `portal.backends.RoleBackend`);
the scope says where they apply. A supervisor acts on the subtree of the unit they command
(their own unit); an admin acts on their whole agency; a superuser everywhere.
"""

from django.db.models import F, Subquery
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


def scope_root(user):
    """The unit whose subtree `user` acts on, or None when they act on no unit (cached on the
    user object for the request, with the ids of its subtree: `_scope`)."""
    if not hasattr(user, "_scope_root"):
        _scope(user)
    return user._scope_root


def _scope(user):
    """The scope of `user` in one query: the units of the subtree they act on (an admin's
    agency, a supervisor's unit and below), the top one of which is the root."""
    user._scope_root, user._scope_unit_ids = None, []
    if user.is_superuser or not user.unit_id:
        return
    if user.role == User.Role.ADMIN:
        prefix = Substr("path", 1, Unit.steplen)
    elif user.role == User.Role.SUPERVISOR:
        prefix = F("path")
    else:
        return
    own = Unit.objects.filter(pk=user.unit_id).values(prefix=prefix)
    units = list(Unit.objects.filter(path__startswith=Subquery(own)).order_by("path"))
    if units:
        user._scope_root = units[0]
        user._scope_unit_ids = [unit.pk for unit in units]
        for unit in units:  # the person's own unit is among them: no query for it later
            if unit.pk == user.unit_id and not User.unit.is_cached(user):
                User.unit.field.set_cached_value(user, unit)


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
            _scope(user)
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

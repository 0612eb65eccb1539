"""Who may see and do what: the one place that decides access.

Capabilities come with a role (Django permissions granted by `portal.backends.RoleBackend`);
the scope says where they apply. A supervisor acts on the subtree of the unit they command
(their own unit); an admin acts on their whole agency; a superuser everywhere.
"""

from django.db.models import Q

from portal.models import Unit, User

AUTHOR = "bulletins.author_bulletin"
VIEW_COVERAGE = "bulletins.view_coverage"
MANAGE_PEOPLE = "portal.manage_people"

ROLE_CAPABILITIES = {
    User.Role.OFFICER: frozenset(),
    User.Role.SUPERVISOR: frozenset({AUTHOR, VIEW_COVERAGE}),
    User.Role.ADMIN: frozenset({AUTHOR, VIEW_COVERAGE, MANAGE_PEOPLE}),
}


def scope_root(user):
    """The unit whose subtree `user` acts on, or None when they act on no unit."""
    if user.is_superuser:
        return None
    if user.role == User.Role.ADMIN and user.unit_id:
        return Unit.get_root_nodes().filter(path=user.unit.agency_path).first()
    if user.role == User.Role.SUPERVISOR and user.unit_id:
        return user.unit
    return None


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


def members_of(unit, *, with_subtree=True):
    condition = Q(unit__path__startswith=unit.path) if with_subtree else Q(unit=unit)
    return User.objects.filter(condition, is_active=True)


def can_author_for(user, unit):
    return user.has_perm(AUTHOR) and is_in_scope(user, unit)


def can_view_coverage_for(user, unit):
    return user.has_perm(VIEW_COVERAGE) and is_in_scope(user, unit)


def can_manage_person(user, person):
    return user.has_perm(MANAGE_PEOPLE) and (user.is_superuser or is_in_scope(user, person.unit))

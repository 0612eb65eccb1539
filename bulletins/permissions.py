"""Who may see and do what: the one place that decides access.

Capabilities come with a role (Django permissions granted by `portal.backends.RoleBackend`);
the scope says where they apply. A supervisor acts on the subtree of the unit they command
(their own unit); an admin acts on their whole agency; a superuser everywhere.
"""

from django.db.models import Exists, OuterRef, Q

from bulletins.models import AudienceUnit, Bulletin, Recipient
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
    user object for the request)."""
    if not hasattr(user, "_scope_root"):
        user._scope_root = _scope_root(user)
    return user._scope_root


def _scope_root(user):
    if user.is_superuser:
        return None
    if user.role == User.Role.ADMIN and user.unit_id:
        return Unit.objects.get_root_nodes().filter(path=user.unit.agency_path).first()
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


def scope_unit_ids(user):
    """The ids of `scope_units(user)` (cached on the user object for the request). Recipient
    rows are narrowed with `unit_id IN (...)`, which the (bulletin, unit) index answers directly,
    rather than with a join the planner may misjudge for a bulletin written a moment ago."""
    if not hasattr(user, "_scope_unit_ids"):
        user._scope_unit_ids = list(scope_units(user).values_list("pk", flat=True))
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


def members_of(unit, *, with_subtree=True):
    condition = Q(unit__path__startswith=unit.path) if with_subtree else Q(unit=unit)
    return User.objects.filter(condition, is_active=True)


def can_author_for(user, unit):
    return user.has_perm(AUTHOR) and is_in_scope(user, unit)


def can_view_coverage_for(user, unit):
    return user.has_perm(VIEW_COVERAGE) and is_in_scope(user, unit)


def can_manage_person(user, person):
    return user.has_perm(MANAGE_PEOPLE) and (user.is_superuser or is_in_scope(user, person.unit))


def can_author_for_all(user, units):
    return bool(units) and all(can_author_for(user, unit) for unit in units)


def manageable_bulletins(user):
    """Bulletins `user` may edit, publish, amend, lift and track: every audience unit in scope."""
    if not user.has_perm(AUTHOR):
        return Bulletin.objects.none()
    if user.is_superuser:
        return Bulletin.objects.all()
    root = scope_root(user)
    if root is None:
        return Bulletin.objects.none()
    outside_scope = AudienceUnit.objects.filter(bulletin=OuterRef("pk")).exclude(
        unit__path__startswith=root.path
    )
    addressed = AudienceUnit.objects.filter(bulletin=OuterRef("pk"))
    return Bulletin.objects.filter(Exists(addressed), agency__path=root.agency_path).exclude(
        Exists(outside_scope)
    )


def visible_bulletins(user):
    """Bulletins `user` may open: published ones addressed to them, and those they manage."""
    addressed = Bulletin.objects.published().addressed_to(user)
    if not user.has_perm(AUTHOR):
        return addressed
    return Bulletin.objects.filter(
        Q(pk__in=addressed.values("pk")) | Q(pk__in=manageable_bulletins(user).values("pk"))
    )


def can_manage(user, bulletin):
    """Whether `manageable_bulletins(user)` holds `bulletin`, decided from its audience units'
    paths and its agency's (one small query) rather than through that queryset, which costs
    more to build than to run. A test holds the two to the same answers."""
    if not user.has_perm(AUTHOR):
        return False
    if user.is_superuser:
        return True
    root = scope_root(user)
    if root is None:
        return False
    audience = AudienceUnit.objects.filter(bulletin_id=bulletin.pk).values_list(
        "unit__path", "bulletin__agency__path"
    )
    rows = list(audience)
    return bool(rows) and all(
        unit_path.startswith(root.path) and agency_path == root.agency_path
        for unit_path, agency_path in rows
    )


def can_acknowledge(user, bulletin, now):
    return (
        bulletin.requires_acknowledgement
        and bulletin.state_at(now) == bulletin.Status.IN_FORCE
        and Bulletin.objects.filter(pk=bulletin.pk).addressed_to(user).exists()
    )


def recipients_in_scope(user, recipients):
    """Narrows recipient rows to the people `user` oversees (by the unit they were told in)."""
    if user.is_superuser:
        return recipients
    root = scope_root(user)
    if root is None or not user.has_perm(VIEW_COVERAGE):
        return recipients.none()
    return recipients.filter(unit_id__in=scope_unit_ids(user))


def trackable_bulletins(user):
    """Published bulletins whose coverage `user` may follow: any told within their scope."""
    if not user.has_perm(VIEW_COVERAGE):
        return Bulletin.objects.none()
    published = Bulletin.objects.published()
    if user.is_superuser:
        return published
    root = scope_root(user)
    if root is None:
        return Bulletin.objects.none()
    told_in_scope = Recipient.objects.filter(
        bulletin=OuterRef("pk"), unit_id__in=scope_unit_ids(user)
    )
    return published.filter(Exists(told_in_scope), agency__path=root.agency_path)

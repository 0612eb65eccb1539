"""Which bulletins a person may see and what they may do to them: the one place that decides
bulletin access. Who is in whose scope, and what a role may do, is `portal.scope`'s."""

from django.db.models import Exists, OuterRef, Q

from bulletins.models import AudienceUnit, Bulletin, Recipient
from portal.scope import AUTHOR, VIEW_COVERAGE, is_in_scope, scope_root, scope_unit_ids


def can_author_for(user, unit):
    return user.has_perm(AUTHOR) and is_in_scope(user, unit)


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


def can_remind(user, bulletin):
    """Whether `user` may remind the people outstanding in their scope of `bulletin`: whoever
    may follow its coverage (`trackable_bulletins`), not only whoever may manage it. Only an
    Order is acknowledged, so only an Order is chased."""
    return (
        bulletin.requires_acknowledgement
        and trackable_bulletins(user).filter(pk=bulletin.pk).exists()
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

"""Which bulletins a person may see and what they may do to them: the one place that decides
bulletin access. Who is in whose scope, and what a role may do, is `portal.scope`'s."""

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from bulletins.models import AudienceUnit, Bulletin, Recipient, RollCall
from portal.models import Unit, User
from portal.scope import (
    AUTHOR,
    VIEW_COVERAGE,
    is_in_scope,
    scope_root,
    scope_unit_ids,
    scope_units,
)


def can_author_for(user, unit):
    return user.has_perm(AUTHOR) and is_in_scope(user, unit)


def can_author_for_all(user, units):
    return bool(units) and all(can_author_for(user, unit) for unit in units)


def can_draft_for(user, unit):
    """A supervisor may write to any unit of their agency; beyond their command the bulletin
    needs approval (`needs_approval`), so where no rule asks for it, only within scope."""
    if can_author_for(user, unit):
        return True
    root = scope_root(user)
    return (
        user.has_perm(AUTHOR)
        and root is not None
        and unit.agency_path == root.agency_path
        and settings.APPROVAL_REQUIRED_FOR != "none"
    )


def draftable_units(user):
    """The units `user` may write to (`can_draft_for`): their scope, and where the approval
    rule applies, every unit of their agency."""
    root = scope_root(user)
    if settings.APPROVAL_REQUIRED_FOR == "none" or root is None or not user.has_perm(AUTHOR):
        return scope_units(user)
    return Unit.objects.filter(path__startswith=root.agency_path)


def approval_rule(is_exercise):
    """ "beyond-own-command", "all" or "none" (settings.APPROVAL_REQUIRED_FOR; exercises
    follow settings.EXERCISE_APPROVAL unless it says "same")."""
    if is_exercise and settings.EXERCISE_APPROVAL != "same":
        return settings.EXERCISE_APPROVAL
    return settings.APPROVAL_REQUIRED_FOR


def needs_approval(author, targets, *, is_exercise=False):
    """Whether a bulletin by `author` to `targets` ([(unit, include_subtree)]) needs a second
    person: by the rule, when the audience reaches beyond the units the author supervises,
    or when it is agency-wide (the agency root with its subtree)."""
    rule = approval_rule(is_exercise)
    if rule in ("all", "none"):
        return rule == "all"
    agency_wide = any(unit.is_root() and subtree for unit, subtree in targets)
    return agency_wide or not can_author_for_all(author, [unit for unit, _ in targets])


def approvers(bulletin):
    """Who may approve `bulletin`: active supervisors and admins whose scope covers its whole
    audience, and superusers; never its author."""
    paths = [unit.path for unit, _ in bulletin.audience_targets()]
    if not paths:
        return User.objects.none()
    common = paths[0][: min(len(path) for path in paths)]
    while not all(path.startswith(common) for path in paths):
        common = common[: -Unit.steplen]
    above = [common[:end] for end in range(Unit.steplen, len(common) + 1, Unit.steplen)]
    return User.objects.filter(
        Q(role=User.Role.SUPERVISOR, unit__path__in=above)
        | Q(role=User.Role.ADMIN, unit__path__startswith=common[: Unit.steplen])
        | Q(is_superuser=True),
        is_active=True,
    ).exclude(pk=bulletin.issued_by_id)


def can_approve(user, bulletin):
    """One condition per line: the author never approves their own."""
    return (
        user.is_active
        and user.has_perm(AUTHOR)
        and user.pk != bulletin.issued_by_id
        and can_author_for_all(user, [unit for unit, _ in bulletin.audience_targets()])
    )


def manageable_bulletins(user):
    """Bulletins `user` may edit, publish, amend, lift and track: every audience unit in scope,
    and those they issued (an audience beyond their command is approved by someone else)."""
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
    in_scope = Exists(addressed) & ~Exists(outside_scope)
    return Bulletin.objects.filter(agency__path=root.agency_path).filter(
        in_scope | Q(issued_by=user)
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
    if bulletin.issued_by_id == user.pk and bulletin.agency_id == user.agency_id:
        return True
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


def recipients_in_scope(user, recipients, *, bulletin=None):
    """Narrows recipient rows to the people `user` oversees (by the unit they were told in).
    With `bulletin` (the one bulletin `recipients` are rows of), a whole agency's scope is
    decided here from its agency: the rows stay read by the bulletin's key alone, with no join
    to the bulletins (a bulletin published since the table's statistics were taken is estimated
    at one row, and the join then costs a lookup per person told)."""
    if user.is_superuser:
        return recipients
    root = scope_root(user)
    if root is None or not user.has_perm(VIEW_COVERAGE):
        return recipients.none()
    if root.is_root():  # a whole agency: whoever its bulletins told (no list of units)
        if bulletin is not None:
            return recipients if bulletin.agency_id == root.pk else recipients.none()
        return recipients.filter(bulletin__agency_id=root.pk)
    return recipients.filter(unit_id__in=scope_unit_ids(user))


def bulletin_recipients_in_scope(user, bulletin):
    """The people told of `bulletin` whom `user` oversees (their recipient rows)."""
    recipients = Recipient.objects.filter(bulletin_id=bulletin.pk)
    return recipients_in_scope(user, recipients, bulletin=bulletin)


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
    told_in_scope = Recipient.objects.filter(bulletin=OuterRef("pk"))
    if root.is_root():  # a whole agency: anyone its bulletins told (no list of units)
        return published.filter(Exists(told_in_scope), agency_id=root.pk)
    told_in_scope = told_in_scope.filter(unit_id__in=scope_unit_ids(user))
    return published.filter(Exists(told_in_scope), agency__path=root.agency_path)


def roll_calls_for(user):
    """Roll calls `user` may see and finish: those they started, and for a supervisor or admin
    those of the units in their scope (another sergeant's roll call elsewhere is a 404)."""
    if user.is_superuser:
        return RollCall.objects.all()
    started = Q(sergeant_id=user.pk)
    if not user.has_perm(AUTHOR) or scope_root(user) is None:
        return RollCall.objects.filter(started)
    return RollCall.objects.filter(started | Q(unit__path__startswith=scope_root(user).path))

"""People one at a time: saved, moved, given a role, put on leave, deactivated, invited to set
a password.

A person's agency (the root of their unit's tree) follows their unit, also when a whole unit
moves; a badge is unique within an agency, so a move that would share one is refused."""

import datetime as dt
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest

from portal import audit, lockout, stamps
from portal.models import AuditEvent, Lockout, Unit, User
from portal.scope import ROLE_CAPABILITIES, can_manage_person, people_in_scope


def manageable_people(user):
    """The people `user` may change: those in their scope, but a superuser only for another
    superuser (an agency admin who could set a superuser's password would be one)."""
    people = people_in_scope(user)
    return people if user.is_superuser else people.exclude(is_superuser=True)


def may_manage_person(user, person):
    if person.is_superuser and not user.is_superuser:
        return False
    return can_manage_person(user, person)


def _fresh_path(unit):
    # A sorted insert or a move may have shifted the path held in memory.
    return Unit.objects.values_list("path", flat=True).get(pk=unit.pk)


def agency_of(unit):
    """The root of `unit`'s tree, or None without a unit."""
    if unit is None:
        return None
    return Unit.objects.get(path=_fresh_path(unit)[: Unit.steplen])


def badge_holder(badge, agency, *, exclude=None):
    """The other person holding `badge` in `agency`, or None."""
    if not badge or agency is None:
        return None
    holders = User.objects.filter(agency=agency, badge=badge)
    if exclude is not None and exclude.pk is not None:
        holders = holders.exclude(pk=exclude.pk)
    return holders.first()


def _check_badge(person, agency):
    holder = badge_holder(person.badge, agency, exclude=person)
    if holder is not None:
        raise ValidationError(f"Badge {person.badge} already belongs to {holder} in {agency}.")


@transaction.atomic
def save_person(person, *, by, changed=(), request=None):
    """Save a person edited by hand (the admin): agency and staff flag follow unit and role."""
    created = person.pk is None
    person.email = person.email.lower()
    person.agency = agency_of(person.unit)
    _check_badge(person, person.agency)
    person.is_staff = person.is_superuser or person.role == User.Role.ADMIN
    if created:
        person.set_unusable_password()
    person.save()
    action = "person.create" if created else "person.change"
    new_values = {
        "role": person.role,
        "unit": person.unit_id,
        "is_active": person.is_active,
        "is_on_leave": person.is_on_leave,
        "tour": person.tour,
    }
    new_values = {name: value for name, value in new_values.items() if name in changed}
    audit.record(action, by=by, obj=person, request=request, fields=sorted(changed), **new_values)
    return person


@transaction.atomic
def deactivate_people(people, *, by, request=None):
    """Deactivate people (they are never deleted); returns how many were active."""
    ids = list(people.filter(is_active=True).values_list("pk", flat=True))
    User.objects.filter(pk__in=ids).update(is_active=False)
    audit.record("person.deactivate", by=by, request=request, people=ids)
    return len(ids)


def with_lock_state(people, *, now):
    """`people` annotated with `is_locked`: whether their sign-in is locked after failed
    attempts right now, as `lockout.locked_logins` says it, inside the same query."""
    locks = Lockout.objects.filter(login=OuterRef("email"), locked_at__isnull=False)
    minutes = settings.LOCKOUT_AUTO_UNLOCK_MINUTES
    if minutes:
        locks = locks.filter(locked_at__gt=now - dt.timedelta(minutes=minutes))
    return people.annotate(is_locked=Exists(locks))


def grantable_roles(by):
    """The roles `by` may give: none that brings a capability they do not hold themselves."""
    held = by.get_all_permissions()  # the role's capabilities and any granted besides
    return [role for role in User.Role if by.is_superuser or ROLE_CAPABILITIES[role] <= held]


def _check_not_self(person, by, what):
    if person.pk == by.pk:
        raise ValidationError(f"You cannot {what} yourself: ask another admin.")


@transaction.atomic
def move_person(person, unit, *, by, request=None):
    """Move `person` to `unit` (in `by`'s scope: the caller checks); audited as a change."""
    if unit.pk == person.unit_id:
        raise ValidationError(f"{person.name} is already in {unit}.")
    before = person.agency_id
    person.unit = unit
    save_person(person, by=by, changed=["unit"], request=request)
    stamps.agency_changed(*{before, person.agency_id} - {None})
    return person


@transaction.atomic
def change_role(person, role, *, by, request=None):
    """Give `person` another role: never one above `by`'s own, never to themselves."""
    _check_not_self(person, by, "change the role of")
    if role not in grantable_roles(by):
        raise ValidationError("You cannot give a role that can do more than your own.")
    if role == person.role:
        raise ValidationError(f"{person.name} is already {User.Role(role).label.lower()}.")
    person.role = role
    return save_person(person, by=by, changed=["role"], request=request)


@transaction.atomic
def set_on_leave(person, on_leave, *, by, request=None):
    """On leave: no reminders, obligations wait; back from leave: they count again."""
    if person.is_on_leave == on_leave:
        state = "on leave" if on_leave else "back from leave"
        raise ValidationError(f"{person.name} is already {state}.")
    person.is_on_leave = on_leave
    save_person(person, by=by, changed=["is_on_leave"], request=request)
    stamps.agency_changed(*{person.agency_id} - {None})
    return person


@transaction.atomic
def deactivate_person(person, *, by, request=None):
    """Deactivate one person (never oneself); their sessions end with it."""
    _check_not_self(person, by, "deactivate")
    if not person.is_active:
        raise ValidationError(f"{person.name} is already deactivated.")
    return deactivate_people(User.objects.filter(pk=person.pk), by=by, request=request)


def record_password_set(person, *, by, request=None):
    """The audit event of an admin setting (or disabling) someone's password; no secret in it."""
    audit.record(
        "person.set_password",
        by=by,
        obj=person,
        request=request,
        usable=person.has_usable_password(),
    )


@transaction.atomic
def resync_agencies(unit):
    """After `unit` moved (possibly into another agency), bring its members' agency in step."""
    agency = agency_of(unit)
    members = User.objects.filter(unit__path__startswith=_fresh_path(unit))
    members = members.exclude(agency=agency)
    taken = User.objects.filter(agency=agency).exclude(badge="").values("badge")
    clashes = members.exclude(badge="").filter(badge__in=taken)
    if clashes.exists():
        raise ValidationError(f"{clashes.count()} member(s) would share a badge in {agency}.")
    # Audiences follow the tree: whatever was kept for these people is out of date.
    stamps.agency_changed(agency.pk, *members.values_list("agency_id", flat=True).distinct())
    return members.update(agency=agency)


# Invitations


class _SiteRequest(HttpRequest):
    """Stands in for a request when links are built outside one (a management command)."""

    def __init__(self, site_url):
        super().__init__()
        bits = urlsplit(site_url)
        self._site_scheme, self._site_host = bits.scheme or "https", bits.netloc

    def _get_scheme(self):
        return self._site_scheme

    def get_host(self):
        return self._site_host


def send_set_password_links(users, request=None):
    """Email each person allauth's password-reset link, through allauth's own form and flow,
    with an invitation's key: it lasts a day, not a reset's hour (portal.password_links)."""
    from allauth.account.forms import ResetPasswordForm
    from allauth.core import context

    from portal.password_links import invitation_tokens

    request = request or _SiteRequest(settings.SITE_URL)
    with context.request_context(request):
        for user in users:
            form = ResetPasswordForm(data={"email": user.email})
            if form.is_valid():
                form.save(request, token_generator=invitation_tokens)


@transaction.atomic
def send_password_link(person, *, by, request=None):
    """Email one person a link to set their own password (after commit), audited. Nobody
    else ever sees or types it; a deactivated person gets none."""
    if not person.is_active:
        raise ValidationError(f"{person.name} is deactivated: reactivate them first.")
    audit.record("person.password_link", by=by, obj=person, request=request, email=person.email)
    transaction.on_commit(lambda: send_set_password_links([person], request=request))
    return person


@transaction.atomic
def reactivate_person(person, *, by, request=None):
    """Let a deactivated person sign in again (with the password they had, or a new link)."""
    if person.is_active:
        raise ValidationError(f"{person.name} is already active.")
    User.objects.filter(pk=person.pk).update(is_active=True)
    person.is_active = True
    audit.record("person.reactivate", by=by, obj=person, request=request)
    stamps.agency_changed(*{person.agency_id} - {None})
    return person


def unlock_person(person, *, by, now, request=None):
    """Unlock one person's sign-in after failed attempts (audited by `lockout`)."""
    if not lockout.locked_logins([person.email], now=now):
        raise ValidationError(f"{person.name}'s sign-in is not locked.")
    return lockout.unlock_people([person], by=by, now=now, request=request)


def recent_sign_ins(person, *, limit=10):
    """The person's latest sign-ins and refused attempts, from the audit trail."""
    signed_in = Q(action="auth.sign_in", actor=person)
    refused = Q(action="auth.sign_in_failed", object_type="portal.user", object_id=str(person.pk))
    return AuditEvent.objects.filter(signed_in | refused).order_by("-at", "-id")[:limit]

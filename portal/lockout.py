"""Account lockout (CJIS AC-7): consecutive failed sign-ins lock the login.

Failures with a password or an MFA code count alike, within `LOCKOUT_WINDOW_MINUTES`. A locked
login refuses even the right password until an admin unlocks it or, when
`LOCKOUT_AUTO_UNLOCK_MINUTES` is not 0, that time has passed. Rows are keyed by the email typed,
so an address nobody has gets the same counting and the same message as a real one.
"""

import datetime as dt

from django.conf import settings
from django.db import transaction

from portal import audit
from portal.models import Lockout, User


def locked_message():
    if settings.LOCKOUT_AUTO_UNLOCK_MINUTES:
        return (
            "Too many failed sign-in attempts: this account is locked. Try again in "
            f"{settings.LOCKOUT_AUTO_UNLOCK_MINUTES} minutes or ask an administrator to unlock it."
        )
    return (
        "Too many failed sign-in attempts: this account is locked. "
        "Ask an administrator to unlock it."
    )


def normalize(login):
    return (login or "").strip().lower()[:254]


def _unlock_due(lock, now):
    minutes = settings.LOCKOUT_AUTO_UNLOCK_MINUTES
    return bool(minutes) and now >= lock.locked_at + dt.timedelta(minutes=minutes)


def is_locked(login, *, now):
    lock = Lockout.objects.filter(login=normalize(login), locked_at__isnull=False).first()
    return lock is not None and not _unlock_due(lock, now)


def _account(login):
    return User.objects.filter(email=login).first()


@transaction.atomic
def register_failure(login, *, now, request=None):
    """Count one failed sign-in for `login`; True when this failure locked it."""
    login = normalize(login)
    lock, _ = Lockout.objects.select_for_update().get_or_create(
        login=login, defaults={"first_failed_at": now, "last_failed_at": now}
    )
    if lock.locked_at and not _unlock_due(lock, now):
        return False
    if lock.locked_at:
        _record_unlock(lock, by=None, now=now, request=request, reason="time passed")
    window = dt.timedelta(minutes=settings.LOCKOUT_WINDOW_MINUTES)
    if lock.locked_at or lock.failures == 0 or now - lock.first_failed_at > window:
        lock.failures, lock.first_failed_at, lock.locked_at = 0, now, None
    lock.failures += 1
    lock.last_failed_at = now
    if lock.failures >= settings.LOCKOUT_FAILURE_LIMIT:
        lock.locked_at = now
        audit.record(
            "account.lockout",
            obj=_account(login),
            request=request,
            now=now,
            outcome="locked",
            login=login,
            failures=lock.failures,
        )
    lock.save()
    return lock.locked_at is not None


@transaction.atomic
def clear_failures(login, *, now, request=None):
    """After a complete sign-in: the failures before it no longer count."""
    lock = Lockout.objects.select_for_update().filter(login=normalize(login)).first()
    if lock is None:
        return
    if lock.locked_at:
        _record_unlock(lock, by=None, now=now, request=request, reason="time passed")
    lock.delete()


@transaction.atomic
def unlock_people(people, *, by, now, request=None):
    """An admin unlocks these people's accounts; returns how many were locked."""
    emails = [person.email for person in people]
    locks = list(Lockout.objects.select_for_update().filter(login__in=emails))
    unlocked = 0
    for lock in locks:
        if lock.locked_at:
            _record_unlock(lock, by=by, now=now, request=request, reason="unlocked by an admin")
            unlocked += 1
        lock.delete()
    return unlocked


def _record_unlock(lock, *, by, now, request, reason):
    audit.record(
        "account.unlock",
        by=by,
        obj=_account(lock.login),
        request=request,
        now=now,
        login=lock.login,
        locked_at=lock.locked_at.isoformat(),
        reason=reason,
    )


def locked_logins(emails, *, now):
    """The emails among `emails` whose account is locked right now."""
    locks = Lockout.objects.filter(login__in=emails, locked_at__isnull=False)
    return {lock.login for lock in locks if not _unlock_due(lock, now)}

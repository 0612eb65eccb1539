"""Personal API tokens: issue, revoke, authenticate. Every step is audited.

A token acts as its person with at most the permissions they had when it was made: a capability
counts only if it was held then and is still held now. It is read-only unless asked otherwise,
lasts 90 days at most, and stops working once its person's password or role changes or their
account is deactivated. Only the SHA-256 of the secret is stored. Use is audited at most once per
token per minute (one conditional UPDATE of `last_used_at` decides), so a busy integration does
not write an audit row per request.

Refused secrets are counted per client IP and minute in the shared cache. Past
API_TOKEN_REFUSALS_PER_MINUTE the IP is answered 429 until the minute ends, whatever it sends. A
secret naming no token is anonymous: instead of an audit event per request (anyone could flood
the trail), one `api.token_refused` event per IP and minute records how many came. A refused
secret naming a real token is audited at once, under its person.
"""

import math
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from bulletins.models import ApiToken
from portal import audit
from portal.celery import app as celery_app
from portal.models import AuditEvent, User

USE_AUDIT_INTERVAL = timedelta(minutes=1)
LIFETIME_DAYS = (7, 30, 90)
# Officers acknowledge, supervisors and admins author; an auditor only reads.
WRITING_ROLES = frozenset({User.Role.OFFICER, User.Role.SUPERVISOR, User.Role.ADMIN})
REFUSAL_WINDOW_SECONDS = 60
REFUSAL_COUNT_TTL = 300  # the count outlives its minute until the summary is written
REFUSALS_TASK = "bulletins.api.tasks.record_token_refusals_task"


class TokenRefused(Exception):
    """The secret names no usable token. `reason` is a stable code."""

    MESSAGES = {
        "token_unknown": "The API token is not valid.",
        "token_revoked": "The API token has been revoked.",
        "token_expired": "The API token has expired.",
        "token_inactive": "The API token's account is deactivated.",
        "token_stale": (
            "The API token stopped working: its owner's password or role changed after it was "
            "made. Make a new one."
        ),
    }

    def __init__(self, reason):
        self.reason = reason
        self.message = self.MESSAGES[reason]
        super().__init__(self.message)


class TooManyRefusals(Exception):
    """This IP sent too many refused tokens this minute; `retry_after` seconds to wait."""

    def __init__(self, retry_after):
        self.retry_after = retry_after
        self.message = (
            "Too many requests with invalid API tokens from your address. "
            f"Try again in {retry_after} seconds."
        )
        super().__init__(self.message)


def may_write(user):
    return user.is_superuser or user.role in WRITING_ROLES


@transaction.atomic
def issue_token(user, *, name, now, is_read_only=True, lifetime=ApiToken.DEFAULT_LIFETIME):
    """Make a token for `user`. Returns (token, secret): the secret is never stored or shown
    again. The caller has checked that `user` signed in recently."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the token after the system that will use it."})
    if lifetime <= timedelta(0):
        raise ValidationError({"lifetime": "A token must last at least a day."})
    if lifetime > ApiToken.MAX_LIFETIME:
        raise ValidationError({"lifetime": "A token lasts at most 90 days."})
    if not is_read_only and not may_write(user):
        raise ValidationError({"is_read_only": "Your role only reads: make a read-only token."})
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: ApiToken.PREFIX_LENGTH],
        secret_hash=ApiToken.hash_secret(secret),
        is_read_only=is_read_only,
        capabilities=sorted(user.get_all_permissions()),
        owner_fingerprint=ApiToken.fingerprint_of(user),
        created_at=now,
        expires_at=now + lifetime,
    )
    audit.record(
        "api.token_create",
        by=user,
        obj=token,
        now=now,
        name=name,
        prefix=token.prefix,
        read_only=is_read_only,
        capabilities=token.capabilities,
        expires_at=token.expires_at.isoformat(),
    )
    return token, secret


@transaction.atomic
def revoke_token(token, *, by, now):
    """Revoke one of `by`'s own tokens. Returns False when it was already revoked."""
    if token.user_id != by.pk:
        raise PermissionDenied
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        audit.record("api.token_revoke", by=by, obj=token, now=now, prefix=token.prefix)
    return bool(revoked)


def _refusal(token, now):
    if token is None:
        return "token_unknown"
    if token.revoked_at is not None:
        return "token_revoked"
    if token.expires_at <= now:
        return "token_expired"
    if not token.user.is_active:
        return "token_inactive"
    if token.owner_fingerprint != ApiToken.fingerprint_of(token.user):
        return "token_stale"
    return None


def authenticate_token(secret, *, now, request=None):
    """The usable token whose secret this is, its person held to the rights it was issued
    with. Raises TooManyRefusals, or TokenRefused (counted; audited as the docstring says)."""
    ip = (audit.client_ip(request) if request is not None else None) or "unknown"
    _check_refusal_limit(ip, now)
    token = (
        ApiToken.objects.select_related("user")
        .filter(secret_hash=ApiToken.hash_secret(secret))
        .first()
    )
    reason = _refusal(token, now)
    if reason:
        _count_refusal(ip, now)
        if token is not None:
            audit.record(
                "api.token_use",
                by=token.user,
                obj=token,
                now=now,
                request=request,
                outcome="denied",
                reason=reason,
                prefix=token.prefix,
            )
        raise TokenRefused(reason)
    _hold_to_issued_rights(token)
    noted = (
        ApiToken.objects.filter(pk=token.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - USE_AUDIT_INTERVAL))
        .update(last_used_at=now)
    )
    if noted:
        audit.record(
            "api.token_use",
            by=token.user,
            obj=token,
            now=now,
            request=request,
            prefix=token.prefix,
            path=request.path if request is not None else "",
        )
    return token


def _hold_to_issued_rights(token):
    """From here on, for this request, `token.user.has_perm` grants only what the person held
    both when the token was made and now. Every capability check (authoring, coverage, people,
    audit) goes through `has_perm`; the scope it applies to follows the unchanged role."""
    user, issued = token.user, frozenset(token.capabilities)
    holds_now = user.has_perm
    user.has_perm = lambda perm, obj=None: perm in issued and holds_now(perm, obj)


# Refused tokens: a per-IP limit, and one audit event per IP and minute.


def refusal_window(now):
    return int(now.timestamp() // REFUSAL_WINDOW_SECONDS)


def _refusals_key(ip, window):
    return f"api:token-refusals:{ip}:{window}"


def _check_refusal_limit(ip, now):
    window = refusal_window(now)
    if (cache.get(_refusals_key(ip, window)) or 0) < settings.API_TOKEN_REFUSALS_PER_MINUTE:
        return
    _count_refusal(ip, now)
    window_ends = (window + 1) * REFUSAL_WINDOW_SECONDS
    raise TooManyRefusals(retry_after=max(1, math.ceil(window_ends - now.timestamp())))


def _count_refusal(ip, now):
    """One more refusal for `ip` this minute; the first one queues the minute's summary."""
    window = refusal_window(now)
    key = _refusals_key(ip, window)
    hit = getattr(cache, "hit", None)  # Redis (portal.cache): one round trip
    if hit is not None:
        count = hit(key, REFUSAL_COUNT_TTL)
    else:
        cache.add(key, 0, timeout=REFUSAL_COUNT_TTL)
        count = cache.incr(key)
    if count == 1:
        transaction.on_commit(partial(_summarise_later, ip, window, now))
    return count


def _summarise_later(ip, window, now):
    """Queued by name: the task module imports this one."""
    window_ends = (window + 1) * REFUSAL_WINDOW_SECONDS
    countdown = math.ceil(window_ends - now.timestamp()) + 2
    celery_app.send_task(REFUSALS_TASK, (ip, window), countdown=countdown)


def record_refusals(ip, window, *, now):
    """The `api.token_refused` event of `ip`'s refused tokens in minute `window`: written once,
    after the minute, with their count (at least 1 even if the cache lost it)."""
    minute = datetime.fromtimestamp(window * REFUSAL_WINDOW_SECONDS, tz=UTC).isoformat()
    with transaction.atomic():
        recorded = AuditEvent.objects.filter(
            action="api.token_refused", ip=None if ip == "unknown" else ip, detail__minute=minute
        )
        if recorded.exists():
            return None
        count = cache.get(_refusals_key(ip, window)) or 1
        event = audit.new_event(
            "api.token_refused", outcome="denied", now=now, count=count, minute=minute
        )
        event.ip = None if ip == "unknown" else ip
        event.save(force_insert=True)
    return event

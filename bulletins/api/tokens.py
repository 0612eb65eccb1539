"""Personal API tokens: issue, revoke, authenticate. Every step is audited.

A token acts as its person, with their permissions, until it expires or is revoked. Only the
SHA-256 of the secret is stored. Use is audited at most once per token per minute (one
conditional UPDATE of `last_used_at` decides), so a busy integration does not write an audit row
per request; refusals are audited every time.
"""

import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from bulletins.models import ApiToken
from portal import audit

USE_AUDIT_INTERVAL = timedelta(minutes=1)
LIFETIME_DAYS = (7, 30, 90, 365)


class TokenRefused(Exception):
    """The secret names no usable token. `reason` is a stable code."""

    MESSAGES = {
        "token_unknown": "The API token is not valid.",
        "token_revoked": "The API token has been revoked.",
        "token_expired": "The API token has expired.",
        "token_inactive": "The API token's account is deactivated.",
    }

    def __init__(self, reason):
        self.reason = reason
        self.message = self.MESSAGES[reason]
        super().__init__(self.message)


@transaction.atomic
def issue_token(user, *, name, now, is_read_only=False, lifetime=ApiToken.DEFAULT_LIFETIME):
    """Make a token for `user`. Returns (token, secret): the secret is never stored or shown
    again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the token after the system that will use it."})
    if lifetime <= timedelta(0):
        raise ValidationError({"lifetime": "A token must last at least a day."})
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: ApiToken.PREFIX_LENGTH],
        secret_hash=ApiToken.hash_secret(secret),
        is_read_only=is_read_only,
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
    return None


def authenticate_token(secret, *, now, request=None):
    """The usable token whose secret this is. Raises TokenRefused (audited) otherwise."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(secret_hash=ApiToken.hash_secret(secret))
        .first()
    )
    reason = _refusal(token, now)
    if reason:
        audit.record(
            "api.token_use",
            by=token.user if token else None,
            obj=token,
            now=now,
            request=request,
            outcome="denied",
            reason=reason,
            prefix=secret[: ApiToken.PREFIX_LENGTH],
        )
        raise TokenRefused(reason)
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

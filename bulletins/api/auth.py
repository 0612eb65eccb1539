"""Who is calling: an API token (`Authorization: Bearer <token>`) or the browser session.

A token request never falls back to the session, needs no CSRF token, and a read-only token is
refused any unsafe method. A session request that changes something must pass Django's CSRF check,
and one that publishes or lifts wants a recent sign-in, as the pages do (`require_fresh_sign_in`).
An IP sending too many refused tokens is answered 429 (see `tokens`).
"""

from functools import wraps
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from bulletins.api import tokens
from bulletins.api.errors import ApiError
from portal.sessions import signed_in_recently

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_secret(request):
    """The secret of an `Authorization: Bearer` header, "" for an empty one, None without."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def authenticate_bearer(request, secret):
    """The token's person, now acting as `request.user`. Raises TokenRefused or
    TooManyRefusals."""
    token = tokens.authenticate_token(secret, now=timezone.now(), request=request)
    request.user = token.user
    request.api_token = token
    return token.user


class BearerToken(HttpBearer):
    """Personal API token."""

    def __call__(self, request):
        secret = bearer_secret(request)
        return None if secret is None else self.authenticate(request, secret)

    def authenticate(self, request, token):
        try:
            user = authenticate_bearer(request, token)
        except tokens.TokenRefused as refused:
            raise ApiError(HTTPStatus.UNAUTHORIZED, refused.reason, refused.message) from None
        except tokens.TooManyRefusals as limited:
            raise ApiError(
                HTTPStatus.TOO_MANY_REQUESTS,
                "too_many_requests",
                limited.message,
                retry_after=limited.retry_after,
            ) from None
        if request.api_token.is_read_only and request.method not in SAFE_METHODS:
            message = "This API token is read-only."
            raise ApiError(HTTPStatus.FORBIDDEN, "read_only_token", message)
        return user


class SessionCookie(APIKeyCookie):
    """The browser session (for the API docs page and the portal's own scripts)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self):
        super().__init__(csrf=False)

    def authenticate(self, request, key):
        if not request.user.is_authenticated:
            return None
        if check_csrf(request) is not None:
            message = "CSRF check failed: send the X-CSRFToken header."
            raise ApiError(HTTPStatus.FORBIDDEN, "csrf_failed", message)
        return request.user


def session_or_token(view):
    """For plain views (CAP documents, feeds): the session or a token, else 401."""

    @login_not_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        secret = bearer_secret(request)
        if secret is not None:
            try:
                authenticate_bearer(request, secret)
            except tokens.TokenRefused as refused:
                return _unauthorized(refused.message)
            except tokens.TooManyRefusals as limited:
                return _too_many(limited)
        elif not request.user.is_authenticated:
            return _unauthorized("Sign in, or send an API token: Authorization: Bearer <token>.")
        return view(request, *args, **kwargs)

    return wrapper


def require_fresh_sign_in(request):
    """For a session, the pages' rule for publishing and lifting: a sign-in or re-authentication
    within ACCOUNT_REAUTHENTICATION_TIMEOUT. A token's writes are governed by its own rights."""
    if getattr(request, "api_token", None) is not None or signed_in_recently(request):
        return
    minutes = settings.ACCOUNT_REAUTHENTICATION_TIMEOUT // 60
    message = (
        f"Sign in again to do this: it needs a sign-in within the last {minutes} minutes. "
        f"Confirm your password at {reverse('account_reauthenticate')}, then try again."
    )
    raise ApiError(HTTPStatus.FORBIDDEN, "reauthentication_required", message)


def _too_many(limited):
    response = HttpResponse(
        limited.message,
        status=HTTPStatus.TOO_MANY_REQUESTS,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(limited.retry_after)
    return response


def _unauthorized(message):
    response = HttpResponse(
        message, status=HTTPStatus.UNAUTHORIZED, content_type="text/plain; charset=utf-8"
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response

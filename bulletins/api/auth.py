"""Who is calling: an API token (`Authorization: Bearer <token>`) or the browser session.

A token request never falls back to the session, needs no CSRF token, and a read-only token is
refused any unsafe method. A session request that changes something must pass Django's CSRF check.
"""

from functools import wraps
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from bulletins.api import tokens
from bulletins.api.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_secret(request):
    """The secret of an `Authorization: Bearer` header, "" for an empty one, None without."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def authenticate_bearer(request, secret):
    """The token's person, now acting as `request.user`. Raises TokenRefused."""
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
        elif not request.user.is_authenticated:
            return _unauthorized("Sign in, or send an API token: Authorization: Bearer <token>.")
        return view(request, *args, **kwargs)

    return wrapper


def _unauthorized(message):
    response = HttpResponse(
        message, status=HTTPStatus.UNAUTHORIZED, content_type="text/plain; charset=utf-8"
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response

"""View decorators for the security controls: fresh sign-in for sensitive actions, and a per-
person rate limit in the shared cache (Redis in production, so it holds across processes)."""

import time
from functools import wraps
from http import HTTPStatus

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render

from portal.sessions import require_recent_sign_in


def recent_sign_in_required(view=None, *, allow_get=False):
    """Publishing, lifting, exporting evidence, changing roles: a sign-in within 5 minutes."""

    def decorator(view_func):
        @wraps(view_func)
        def wrapped(request, *args, **kwargs):
            if not (allow_get and request.method in ("GET", "HEAD")):
                require_recent_sign_in(request)
            return view_func(request, *args, **kwargs)

        return wrapped

    return decorator(view) if view is not None else decorator


def consume_rate(action, who, per_minute):
    """Count one use in this minute's window; False once `who` is over `per_minute`."""
    window = int(time.time() // 60)
    key = f"portal:rate:{action}:{who}:{window}"
    hit = getattr(cache, "hit", None)  # Redis (portal.cache): one round trip
    if hit is not None:
        return hit(key, 90) <= per_minute
    cache.add(key, 0, timeout=90)
    return cache.incr(key) <= per_minute


def rate_limited(action, *, setting):
    """At most `settings.<setting>` POSTs a minute per person, then 429."""

    def decorator(view_func):
        @wraps(view_func)
        def wrapped(request, *args, **kwargs):
            limit = getattr(settings, setting)
            if request.method == "POST" and not consume_rate(action, request.user.pk, limit):
                return render(request, "429.html", status=HTTPStatus.TOO_MANY_REQUESTS)
            return view_func(request, *args, **kwargs)

        return wrapped

    return decorator

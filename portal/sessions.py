"""Session limits (CJIS AC-11, IA-11), enforced on the server.

A session ends after `SESSION_IDLE_TIMEOUT_SECONDS` without activity and
`SESSION_ABSOLUTE_TIMEOUT_SECONDS` after sign-in, whatever the browser does. A page refreshing
itself (the feed, coverage, the overview) is not activity: its polling element sends
`AUTO_REFRESH_HEADER`, e.g. `hx-headers='{"Portal-Auto-Refresh": "true"}'` beside
`hx-trigger="every 30s"` (tests/test_sessions.py checks every template that polls). Leaving the
header out only keeps a session alive as a click would; sending it only ends one sooner.
Sensitive actions also want a sign-in (or re-authentication) within
`ACCOUNT_REAUTHENTICATION_TIMEOUT` seconds.
"""

import time

from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings

SIGNED_IN_AT = "portal_signed_in_at"
LAST_ACTIVE_AT = "portal_last_active_at"
ACTIVITY_RESOLUTION_SECONDS = 60
AUTO_REFRESH_HEADER = "Portal-Auto-Refresh"


def start_session_clock(session, now):
    session[SIGNED_IN_AT] = now
    session[LAST_ACTIVE_AT] = now


def expiry_reason(session, now):
    """Why this signed-in session is over, or "" while it is not."""
    signed_in_at = session.get(SIGNED_IN_AT)
    last_active_at = session.get(LAST_ACTIVE_AT)
    if signed_in_at is None or last_active_at is None:
        return ""
    if now - signed_in_at > settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS:
        return "absolute session limit"
    if now - last_active_at > settings.SESSION_IDLE_TIMEOUT_SECONDS:
        return "idle timeout"
    return ""


def is_auto_refresh(request):
    """A request the page made by itself, with nobody necessarily in front of it."""
    return request.headers.get(AUTO_REFRESH_HEADER) == "true"


def note_activity(session, now):
    """Activity is written at most once a minute (a session may end up to a minute early,
    never late), so most requests do not write the session."""
    if SIGNED_IN_AT not in session:
        start_session_clock(session, now)  # a session made without the sign-in form
    elif now - session.get(LAST_ACTIVE_AT, 0) >= ACTIVITY_RESOLUTION_SECONDS:
        session[LAST_ACTIVE_AT] = now


def signed_in_recently(request):
    """A sign-in or re-authentication (password or MFA) within the re-authentication window."""
    records = get_authentication_records(request, request.user)
    latest = max((record.get("at", 0) for record in records), default=0)
    return time.time() - latest < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT


def require_recent_sign_in(request):
    """Raise allauth's ReauthenticationRequired: its middleware asks for the password (or
    code) and then replays the request."""
    if not request.user.is_authenticated or not signed_in_recently(request):
        raise ReauthenticationRequired()

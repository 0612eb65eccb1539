"""What allauth and Django report about signing in, written to the audit trail.

These are the libraries' signals (our own domain calls its services instead); connected in
`PortalConfig.ready()`.
"""

import time

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.contrib.auth import signals as auth_signals
from django.utils import timezone

from portal import audit, lockout
from portal.sessions import start_session_clock


def on_signed_in(sender, request, user, **kwargs):
    now = timezone.now()
    lockout.clear_failures(user.email, now=now, request=request)
    start_session_clock(request.session, time.time())
    audit.record("auth.sign_in", by=user, request=request, now=now)


def on_signed_out(sender, request, user, **kwargs):
    if user is None:
        return
    reason = getattr(request, "session_end_reason", "signed out")
    audit.record("auth.sign_out", by=user, request=request, reason=reason)


def on_password_changed(sender, request, user, **kwargs):
    audit.record("auth.password_change", by=user, obj=user, request=request)


def on_password_reset(sender, request, user, **kwargs):
    audit.record("auth.password_reset", by=user, obj=user, request=request)


def _authenticator_event(action):
    def receiver(sender, request, user, authenticator, **kwargs):
        audit.record(action, by=user, obj=user, request=request, type=authenticator.type)

    return receiver


def on_mfa_failed(sender, request, user, authenticator, **kwargs):
    now = timezone.now()
    audit.record(
        "mfa.failed",
        obj=user,
        request=request,
        now=now,
        outcome="failure",
        login=user.email,
        type=authenticator.type,
        reauthentication=bool(kwargs.get("reauthentication")),
    )
    lockout.register_failure(user.email, now=now, request=request)


RECEIVERS = (
    (account_signals.user_logged_in, on_signed_in),
    (auth_signals.user_logged_out, on_signed_out),
    (account_signals.password_changed, on_password_changed),
    (account_signals.password_set, on_password_changed),
    (account_signals.password_reset, on_password_reset),
    (mfa_signals.authenticator_added, _authenticator_event("mfa.authenticator_added")),
    (mfa_signals.authenticator_removed, _authenticator_event("mfa.authenticator_removed")),
    (mfa_signals.authenticator_reset, _authenticator_event("mfa.authenticator_reset")),
    (mfa_signals.authenticator_used, _authenticator_event("mfa.used")),
    (mfa_signals.authentication_failed, on_mfa_failed),
)


def connect():
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, dispatch_uid=f"portal.{receiver.__name__}.{id(signal)}")

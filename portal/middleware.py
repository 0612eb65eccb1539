"""Request id, session limits, MFA enrolment and no caching of signed-in pages."""

import re
import time
import uuid

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils.cache import patch_cache_control
from django_htmx.http import HttpResponseClientRedirect

from portal import mfa
from portal.logs import request_id_var
from portal.sessions import expiry_reason, is_auto_refresh, note_activity

MFA_ENROLLED = "portal_mfa_enrolled"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# Sent with the response that ends a session (sign-out or a time limit): the browser drops
# what it kept of the signed-in pages, its cookies and its storage.
CLEAR_SITE_DATA = '"cache", "cookies", "storage"'
# All a person who must enrol in MFA may reach until they have: the choice, a passkey or an app.
ENROLMENT_URL_NAMES = frozenset(
    {
        "mfa_index",
        "mfa_add_webauthn",
        "mfa_activate_totp",
        "account_reauthenticate",
        "mfa_reauthenticate",
        "account_logout",
        "healthz",
        # The installable app's files: nothing personal in them (portal.offline).
        "manifest",
        "service_worker",
        "offline",
    }
)


def _url_name(request):
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return ""


def _redirect(request, url):
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


class RequestIdMiddleware:
    """`request.request_id`: the caller's X-Request-ID when it is sane, else a new one. It goes
    back in the response header, into every log line and every audit event of the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("x-request-id", "")
        request.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class SessionTimeoutMiddleware:
    """Ends a session idle for 30 minutes or 12 hours old (see `portal.sessions`); a page's
    own refreshes are not activity. The response that ends a session, this way or by signing
    out, tells the browser to clear the site's data."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        signed_in = request.user.is_authenticated
        response = self._respond(request) if signed_in else self.get_response(request)
        if signed_in and not request.user.is_authenticated:
            response["Clear-Site-Data"] = CLEAR_SITE_DATA
        return response

    def _respond(self, request):
        now = time.time()
        reason = expiry_reason(request.session, now)
        if reason:
            request.session_end_reason = reason
            logout(request)
            return _redirect(request, redirect_to_login(request.get_full_path()).url)
        if not is_auto_refresh(request):
            note_activity(request.session, now)
        return self.get_response(request)


class MFAEnrolmentMiddleware:
    """Someone who must use MFA and has neither a passkey nor an authenticator app reaches only
    the enrolment pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._must_enrol(request) and _url_name(request) not in ENROLMENT_URL_NAMES:
            return _redirect(request, reverse("mfa_index"))
        return self.get_response(request)

    def _must_enrol(self, request):
        user = request.user
        if not user.is_authenticated or request.session.get(MFA_ENROLLED) == user.pk:
            return False
        if not mfa.requires_mfa(user):
            return False
        if mfa.is_enrolled(user):
            # Remembered for the session: a role change ends it anyway.
            request.session[MFA_ENROLLED] = user.pk
            return False
        return True


class NoStoreMiddleware:
    """Signed-in pages may show bulletins (the urgent banner is on every page): never cached."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated and "Cache-Control" not in response:
            patch_cache_control(response, no_store=True, private=True)
        return response

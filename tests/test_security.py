"""The security baseline: the CJIS web-portal controls and the audit trail, one test (or more)
per control."""

import copy
import datetime as dt
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from html.parser import HTMLParser
from http import HTTPStatus

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings as django_settings
from django.contrib.auth import password_validation
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bulletins.markup import render_markdown
from bulletins.models import Bulletin
from portal import audit, mfa
from portal.logs import PortalJsonFormatter, redact
from portal.management.commands.seed_demo import DEMO_TOTP_SECRET
from portal.models import AuditEvent, Lockout, User
from tests.factories import PASSWORD, TOTP_SECRET, UserFactory, draft_bulletin, make_unit

pytestmark = pytest.mark.django_db

# Travel forward, never back: sessions made while travelling must still be valid after it.
START = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
JULY_8 = dt.datetime(2026, 7, 8, 21, 0, tzinfo=dt.UTC)


@login_not_required
def _boom(request):
    raise RuntimeError("the database said no: password=hunter2")


urlpatterns = [path("boom", _boom)]
handler500 = "portal.views.server_error"


@pytest.fixture(autouse=True)
def own_cache_keys(settings):
    """Rate limits and used TOTP codes live in the shared cache: a fresh key prefix per test."""
    caches = copy.deepcopy(django_settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-security-{uuid.uuid4().hex}"
    settings.CACHES = caches


def totp_code(secret):
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client, email, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# Multi-factor authentication


def test_a_supervisor_without_mfa_reaches_nothing_but_enrolment(sergeant):
    client = Client()
    sign_in(client, sergeant.email)
    assert signed_in_user_id(client) == str(sergeant.pk)
    enrol = reverse("mfa_activate_totp")

    pages = [
        reverse("bulletins:feed"),
        reverse("bulletins:history"),
        reverse("bulletins:create"),
        reverse("admin:index"),
        reverse("audit:events"),
        reverse("account_change_password"),
        "/no-such-page/",
    ]
    responses = [client.get(url) for url in pages]
    htmx = client.get(reverse("bulletins:feed_items"), headers={"HX-Request": "true"})
    enrolment = client.get(enrol, follow=True)

    assert [(r.status_code, r.url) for r in responses] == [(HTTPStatus.FOUND, enrol)] * len(pages)
    assert htmx.headers["HX-Redirect"] == enrol
    assert enrolment.status_code == HTTPStatus.OK
    assert enrolment.request["PATH_INFO"] in (enrol, reverse("account_reauthenticate"))


def test_enrolment_then_the_portal_opens(sergeant, django_capture_on_commit_callbacks):
    client = Client()
    sign_in(client, sergeant.email)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    stored = Authenticator.objects.get(user=sergeant, type=Authenticator.Type.TOTP)
    assert stored.data["secret"] != secret
    assert mfa.decrypt_secret(stored.data["secret"]) == secret
    assert client.get(reverse("bulletins:feed")).status_code == HTTPStatus.OK
    assert "mfa.authenticator_added" in actions()


@pytest.mark.parametrize(
    ("policy", "role", "required"),
    [
        ("supervisors", User.Role.OFFICER, False),
        ("supervisors", User.Role.SUPERVISOR, True),
        ("supervisors", User.Role.ADMIN, True),
        ("supervisors", User.Role.AUDITOR, True),
        ("all", User.Role.OFFICER, True),
        ("none", User.Role.ADMIN, False),
    ],
)
def test_mfa_required_for_setting(settings, policy, role, required):
    settings.MFA_REQUIRED_FOR = policy

    assert mfa.requires_mfa(User(role=role)) is required


def test_with_mfa_required_for_all_an_officer_must_enrol(settings, officer):
    settings.MFA_REQUIRED_FOR = "all"
    client = Client()
    sign_in(client, officer.email)

    response = client.get(reverse("bulletins:feed"))

    assert response.url == reverse("mfa_activate_totp")


def test_an_enrolled_supervisor_signs_in_with_password_and_code(sergeant):
    mfa.enrol_totp(sergeant, TOTP_SECRET)
    client = Client()

    after_password = sign_in(client, sergeant.email)
    signed_in_before_code = signed_in_user_id(client)
    after_code = client.post(reverse("mfa_authenticate"), {"code": totp_code(TOTP_SECRET)})

    assert after_password.url == reverse("mfa_authenticate")
    assert signed_in_before_code is None
    assert after_code.status_code == HTTPStatus.FOUND
    assert signed_in_user_id(client) == str(sergeant.pk)
    assert actions()[-2:] == ["mfa.used", "auth.sign_in"]


def test_totp_secrets_are_encrypted_at_rest(sergeant):
    authenticator = mfa.enrol_totp(sergeant, TOTP_SECRET)

    stored = Authenticator.objects.get(pk=authenticator.pk).data["secret"]

    assert TOTP_SECRET not in stored
    assert stored.startswith(mfa.ENCRYPTED_PREFIX)
    assert mfa.MFAAdapter().decrypt(stored) == TOTP_SECRET


def test_a_supervisor_cannot_turn_mfa_off(sergeant):
    authenticator = mfa.enrol_totp(sergeant, TOTP_SECRET)

    assert mfa.MFAAdapter().can_delete_authenticator(authenticator) is False


def test_the_admin_sign_in_is_the_portal_sign_in(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.url.startswith(reverse("account_login"))


# Lockout


def test_the_sixth_attempt_with_the_right_password_after_five_failures_is_refused(officer):
    client = Client()
    for _ in range(5):
        sign_in(client, officer.email, "wrong-password-123")

    response = sign_in(client, officer.email, PASSWORD)

    assert response.status_code == HTTPStatus.OK
    assert "this account is locked" in response.text
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.filter(action="account.lockout", object_id=str(officer.pk)).exists()


def test_a_locked_account_stays_locked_after_the_rate_limit_window(officer):
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(5):
            sign_in(client, officer.email, "wrong-password-123")
        traveller.shift(dt.timedelta(minutes=29))

        response = sign_in(client, officer.email, PASSWORD)

    assert "this account is locked" in response.text
    assert signed_in_user_id(client) is None


def test_the_lock_opens_by_itself_after_the_configured_time_and_that_is_audited(officer):
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(5):
            sign_in(client, officer.email, "wrong-password-123")
        traveller.shift(dt.timedelta(minutes=30, seconds=1))

        sign_in(client, officer.email, PASSWORD)

    assert signed_in_user_id(client) == str(officer.pk)
    unlock = AuditEvent.objects.get(action="account.unlock")
    assert unlock.detail["reason"] == "time passed"


def test_with_auto_unlock_off_only_an_admin_unlocks(settings, officer, admin, client):
    settings.LOCKOUT_AUTO_UNLOCK_MINUTES = 0
    admin_client, client = client, Client()
    for _ in range(5):
        sign_in(client, officer.email, "wrong-password-123")
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=2), tick=False):
        still_locked = sign_in(client, officer.email, PASSWORD)
    admin_client.force_login(admin)

    admin_client.post(
        reverse("admin:portal_user_changelist"),
        {"action": "unlock", "_selected_action": [officer.pk]},
    )
    sign_in(client, officer.email, PASSWORD)

    assert "Ask an administrator to unlock it." in still_locked.text
    assert signed_in_user_id(client) == str(officer.pk)
    unlock = AuditEvent.objects.get(action="account.unlock")
    assert (unlock.actor, unlock.object_id) == (admin, str(officer.pk))


def test_an_unknown_email_gets_exactly_the_same_answers(settings, officer):
    settings.LOCKOUT_FAILURE_LIMIT = 2  # fewer slow password hashes; the same steps
    known, unknown = Client(), Client()
    known_texts, unknown_texts = [], []
    for _ in range(3):
        known_texts.append(_errors(sign_in(known, officer.email, "wrong-password-123")))
        unknown_texts.append(_errors(sign_in(unknown, "nobody@agency.test", "wrong-password-123")))

    assert known_texts == unknown_texts
    assert "this account is locked" in " ".join(known_texts[-1])


def test_failed_mfa_codes_lock_the_account_too(sergeant):
    mfa.enrol_totp(sergeant, TOTP_SECRET)
    client = Client()
    sign_in(client, sergeant.email)
    for _ in range(5):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(TOTP_SECRET)})

    assert "this account is locked" in response.text
    assert signed_in_user_id(client) is None
    assert actions().count("mfa.failed") == 5


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(officer):
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(4):
            sign_in(client, officer.email, "wrong-password-123")
        traveller.shift(dt.timedelta(minutes=16))
        sign_in(client, officer.email, "wrong-password-123")

        sign_in(client, officer.email, PASSWORD)

    assert signed_in_user_id(client) == str(officer.pk)
    assert not Lockout.objects.exists()


def _errors(response):
    return re.findall(
        r'<[^>]*class="[^"]*(?:errorlist|alert)[^"]*"[^>]*>(.*?)</', response.text, re.S
    )


# Sessions


def test_idle_for_thirty_minutes_and_one_second_sends_to_sign_in(officer):
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        sign_in(client, officer.email)
        traveller.shift(dt.timedelta(minutes=29, seconds=59))
        still_in = client.get(reverse("bulletins:feed"))
        traveller.shift(dt.timedelta(minutes=30, seconds=1))

        expired = client.get(reverse("bulletins:feed"))

    assert still_in.status_code == HTTPStatus.OK
    assert expired.status_code == HTTPStatus.FOUND
    assert expired.url.startswith(reverse("account_login"))
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.get(action="auth.sign_out").detail["reason"] == "idle timeout"


def test_the_feed_refreshing_itself_is_not_activity(officer):
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        sign_in(client, officer.email)
        for _ in range(31):
            traveller.shift(dt.timedelta(minutes=1))
            client.get(reverse("bulletins:feed_items"), headers={"HX-Request": "true"})

        response = client.get(reverse("bulletins:feed"))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))


def test_a_session_ends_twelve_hours_after_sign_in_however_active(officer):
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        sign_in(client, officer.email)
        for _ in range(36):
            traveller.shift(dt.timedelta(minutes=20))
            last_ok = client.get(reverse("bulletins:feed")).status_code
        traveller.shift(dt.timedelta(seconds=1))

        response = client.get(reverse("bulletins:feed"))

    assert last_ok == HTTPStatus.OK
    assert response.status_code == HTTPStatus.FOUND
    assert AuditEvent.objects.get(action="auth.sign_out").detail["reason"] == (
        "absolute session limit"
    )


def test_an_old_session_cookie_is_useless_after_sign_out(officer):
    client = Client()
    sign_in(client, officer.email)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    client.post(reverse("account_logout"))

    replay = Client()
    replay.cookies[django_settings.SESSION_COOKIE_NAME] = cookie
    response = replay.get(reverse("bulletins:feed"))
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))
    assert "auth.sign_out" in actions()


@pytest.mark.parametrize(
    "change",
    [
        {"is_active": False},
        {"role": User.Role.SUPERVISOR},
    ],
    ids=["deactivation", "role change"],
)
def test_deactivation_or_a_role_change_ends_the_sessions_at_once(officer, change):
    client = Client()
    sign_in(client, officer.email)

    User.objects.filter(pk=officer.pk).update(**change)
    response = client.get(reverse("bulletins:feed"))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))


def test_the_session_cookie_dies_with_the_browser_and_is_locked_down(officer):
    client = Client()

    sign_in(client, officer.email)

    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie["expires"] == "" and cookie["max-age"] == ""
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True  # DJANGO_DEBUG=false, as in production
    assert django_settings.CSRF_COOKIE_SECURE and django_settings.CSRF_COOKIE_HTTPONLY


# Re-authentication for publishing, lifting, evidence export and role changes


def test_publishing_wants_a_sign_in_within_five_minutes_then_goes_through(
    client, sergeant, precinct17
):
    draft = draft_bulletin(sergeant, precinct17)
    url = reverse("bulletins:publish", args=[draft.pk])
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(sergeant)
        traveller.shift(dt.timedelta(minutes=5, seconds=1))

        stale = client.post(url)
        draft.refresh_from_db()
        status_before = draft.status
        resumed = client.post(stale.url, {"password": PASSWORD})

    assert stale.url.startswith(reverse("account_reauthenticate"))
    assert status_before == Bulletin.Status.DRAFT
    assert resumed.status_code == HTTPStatus.FOUND
    draft.refresh_from_db()
    assert draft.status == Bulletin.Status.IN_FORCE


def test_a_fresh_sign_in_publishes_without_asking_again(client, sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:publish", args=[draft.pk]))

    assert response.url == reverse("bulletins:detail", args=[draft.pk])


def test_lifting_shows_the_form_but_wants_a_recent_sign_in_to_lift(client, sergeant, precinct17):
    from tests.factories import published_bulletin

    bulletin = published_bulletin(sergeant, precinct17)
    url = reverse("bulletins:lift", args=[bulletin.pk])
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(sergeant)
        traveller.shift(dt.timedelta(minutes=6))

        form = client.get(url)
        posted = client.post(url, {"reason": "Threat assessment lowered."})

    assert form.status_code == HTTPStatus.OK
    assert posted.url.startswith(reverse("account_reauthenticate"))
    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE


def test_changing_a_role_in_the_admin_wants_a_recent_sign_in(client, admin, officer):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        traveller.shift(dt.timedelta(minutes=6))

        response = client.post(
            reverse("admin:portal_user_change", args=[officer.pk]),
            {"email": officer.email, "name": officer.name, "role": "supervisor"},
        )

    assert response.url.startswith(reverse("account_reauthenticate"))
    officer.refresh_from_db()
    assert officer.role == User.Role.OFFICER


def test_exporting_the_audit_trail_wants_a_recent_sign_in(client, admin):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        traveller.shift(dt.timedelta(minutes=6))

        response = client.get(reverse("audit:export"))

    assert response.url.startswith(reverse("account_reauthenticate"))


# System-use notice and passwords


def test_the_sign_in_page_shows_the_system_use_notice(client):
    html = client.get(reverse("account_login")).text

    assert 'class="system-use-notice"' in html
    for words in ("restricted", "monitored", "audited", "penalties", "consent"):
        assert words in html


def test_the_system_use_notice_is_configurable(client, settings):
    settings.SYSTEM_USE_NOTICE = "Metro PD: authorized personnel only."

    html = client.get(reverse("account_login")).text

    assert "Metro PD: authorized personnel only." in html


@pytest.mark.parametrize(
    "password",
    ["short-pw-11", "x" * 129, "password1234", "officer.agency.test"],
    ids=["11 characters", "129 characters", "common", "like the email"],
)
def test_weak_passwords_are_refused(officer, password):
    with pytest.raises(ValidationError):
        password_validation.validate_password(password, officer)


def test_a_long_unusual_password_is_accepted_and_hashed_with_pbkdf2(officer):
    password_validation.validate_password("tangerine-lamppost-47", officer)

    assert make_password("tangerine-lamppost-47").startswith("pbkdf2_sha256$")


# Browser and deployment hardening


@pytest.fixture
def page_urls(sergeant, precinct17):
    from tests.factories import published_bulletin

    bulletin = published_bulletin(sergeant, precinct17)
    return {
        "feed": reverse("bulletins:feed"),
        "detail": reverse("bulletins:detail", args=[bulletin.pk]),
        "form": reverse("bulletins:create"),
        "history": reverse("bulletins:history"),
        "lift form": reverse("bulletins:lift", args=[bulletin.pk]),
        "admin": reverse("admin:index"),
        "audit": reverse("audit:events"),
        "404": "/no-such-page/",
    }


def _assert_hardened(response):
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_every_signed_in_page_type_is_hardened_and_never_cached(client, admin, page_urls):
    client.force_login(admin)

    for name, url in page_urls.items():
        response = client.get(url)

        assert response.status_code in (HTTPStatus.OK, HTTPStatus.NOT_FOUND), name
        _assert_hardened(response)
        assert "no-store" in response.headers["Cache-Control"], name


@pytest.mark.parametrize("url_name", ["account_login", "account_reset_password", "healthz"])
def test_public_pages_are_hardened_too(client, url_name):
    _assert_hardened(client.get(reverse(url_name)))


def test_hsts_is_sent_over_https(client):
    response = client.get(reverse("account_login"), secure=True)

    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_check_deploy_passes_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
        "DJANGO_MFA_ENCRYPTION_KEY": uuid.uuid4().hex * 2,
        "DJANGO_ALLOWED_HOSTS": "portal.example.org",
        "DJANGO_SECURE_SSL_REDIRECT": "true",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_wants_a_shared_cache_and_an_mfa_key(settings):
    from portal.checks import check_security_baseline

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.MFA_ENCRYPTION_KEY_IS_SET = False

    ids = [problem.id for problem in check_security_baseline(None)]

    assert ids == ["portal.W001", "portal.W002"]


def test_acknowledging_is_rate_limited_per_person(client, settings, officer, sergeant, precinct17):
    from tests.factories import published_bulletin

    settings.ACKNOWLEDGE_RATE_PER_MINUTE = 3
    bulletin = published_bulletin(sergeant, precinct17)
    url = reverse("bulletins:acknowledge", args=[bulletin.pk])

    with time_machine.travel(START, tick=False):  # all four in one minute's window
        client.force_login(officer)
        statuses = [client.post(url, {"version": 1}).status_code for _ in range(4)]

    assert statuses == [HTTPStatus.FOUND] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]


def test_password_reset_is_rate_limited(client, officer):
    url = reverse("account_reset_password")

    statuses = [client.post(url, {"email": officer.email}).status_code for _ in range(6)]

    assert statuses[-1] == HTTPStatus.TOO_MANY_REQUESTS


def test_sign_in_is_rate_limited_per_address(settings, officer):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    client = Client()
    attempts = [sign_in(client, f"person{n}@agency.test", "wrong-password-123") for n in range(4)]

    assert "Too many failed login attempts" in attempts[-1].text


# Errors and logs


@pytest.fixture
def log_lines():
    """What the configured console handler writes (JSON lines)."""
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h.formatter, PortalJsonFormatter)
    )
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.setStream(previous)


@pytest.mark.urls("tests.test_security")
def test_a_server_error_shows_a_request_id_that_is_in_the_logs(log_lines):
    client = Client(raise_request_exception=False)

    response = client.get("/boom")

    request_id = response.headers["X-Request-ID"]
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert request_id in response.text
    assert "RuntimeError" not in response.text and "Traceback" not in response.text
    error = next(line for line in log_lines() if line["level"] == "ERROR")
    assert error["request_id"] == request_id
    assert "hunter2" not in json.dumps(error)
    assert "password=[redacted]" in error["exc_info"]


def test_a_sane_incoming_request_id_is_kept_and_a_strange_one_replaced(client):
    kept = client.get(reverse("healthz"), headers={"X-Request-ID": "lb-4f2a9c1e-77"})
    replaced = client.get(reverse("healthz"), headers={"X-Request-ID": "<script>alert(1)"})

    assert kept.headers["X-Request-ID"] == "lb-4f2a9c1e-77"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])


def test_the_not_found_page_carries_the_request_id(client, officer):
    client.force_login(officer)

    response = client.get("/no-such-page/")

    assert response.headers["X-Request-ID"] in response.text


def test_logs_are_json_and_carry_no_passwords_or_reset_tokens(log_lines, officer):
    client = Client()
    sign_in(client, officer.email, "wrong-password-123")
    sign_in(client, officer.email)
    logging.getLogger("django.request").warning(
        "Not Found: %s", "/accounts/password/reset/key/3f-abc123token/"
    )

    text = json.dumps(log_lines())

    assert PASSWORD not in text and "wrong-password-123" not in text
    assert "abc123token" not in text
    assert "/password/reset/key/[redacted]" in text


def test_redact_hides_secrets_in_query_strings():
    assert redact("GET /x?token=abc&page=2&password=p") == (
        "GET /x?token=[redacted]&page=2&password=[redacted]"
    )


# The audit trail


def test_an_event_carries_time_to_the_millisecond_and_a_chained_hash(officer):
    with time_machine.travel(dt.datetime(2026, 7, 8, 21, 0, 0, 123456, tzinfo=dt.UTC)):
        first = audit.record("test.first", by=officer)
        second = audit.record("test.second", by=officer)
    audit.seal()

    first = AuditEvent.objects.get(pk=first.pk)
    stored = AuditEvent.objects.get(pk=second.pk)
    assert stored.at.microsecond % 1000 == 0
    assert stored.at.utcoffset() == dt.timedelta(0)
    assert stored.seq == first.seq + 1
    assert stored.prev_hash == first.hash != ""
    assert stored.hash == audit.content_hash(stored)


def test_events_of_a_request_record_ip_user_agent_and_request_id(officer):
    client = Client(HTTP_USER_AGENT="PatrolCar/1.0")

    response = sign_in(client, officer.email)

    event = AuditEvent.objects.get(action="auth.sign_in")
    assert (event.actor, event.ip, event.user_agent) == (officer, "127.0.0.1", "PatrolCar/1.0")
    assert event.request_id == response.headers["X-Request-ID"]
    assert event.agency_id == officer.agency_id


def test_sign_in_failure_and_password_change_are_audited(client, officer):
    sign_in(Client(), officer.email, "wrong-password-123")
    client.force_login(officer)

    client.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": "a-new-long-passphrase",
            "password2": "a-new-long-passphrase",
        },
    )

    failure = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert (failure.outcome, failure.object_id) == ("failure", str(officer.pk))
    assert "wrong-password-123" not in json.dumps(failure.detail)
    assert "auth.password_change" in actions()


def _require_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")


def _advisory_locks_held():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks "
            "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
        )
        return cursor.fetchone()[0]


def _chain():
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq"))


def _assert_linked(chain):
    assert [event.seq for event in chain] == list(range(1, len(chain) + 1))
    assert [event.prev_hash for event in chain] == ["", *(event.hash for event in chain[:-1])]
    assert all(event.hash == audit.content_hash(event) for event in chain)


def test_recording_is_one_insert_that_takes_no_lock_and_leaves_the_event_unsealed(officer):
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            event = audit.record("test.event", by=officer)
        locks = _advisory_locks_held() if connection.vendor == "postgresql" else 0

    assert [query["sql"].split()[0] for query in queries] == ["INSERT"]
    assert locks == 0
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.prev_hash, stored.hash) == (None, "", "")
    assert (event.seq, event.prev_hash, event.hash) == (None, "", "")
    assert audit.unsealed_count() == 1


def test_sealing_chains_in_seq_order_and_a_second_seal_takes_only_new_events(officer):
    first = [audit.record("test.event", by=officer, n=n) for n in range(3)]

    assert audit.seal(limit=2) == 2
    assert audit.seal() == 1
    sealed_once = {event.pk: (event.seq, event.prev_hash, event.hash) for event in _chain()}
    later = [audit.record("test.event", by=officer, n=n) for n in range(3, 5)]
    assert audit.unsealed_count() == 2
    assert audit.seal() == 2
    assert audit.seal() == 0

    chain = _chain()
    assert [event.pk for event in chain] == [event.pk for event in first + later]
    _assert_linked(chain)
    assert {e.pk: (e.seq, e.prev_hash, e.hash) for e in chain[:3]} == sealed_once
    assert audit.first_broken_link() == (None, 5)


def test_sealing_thousands_of_events_takes_a_handful_of_queries(django_assert_max_num_queries):
    at = audit.to_utc_millisecond(dt.datetime(2026, 7, 8, 21, 0, tzinfo=dt.UTC))
    AuditEvent.objects.bulk_create(
        AuditEvent(at=at, action="test.bulk", detail={"n": n}) for n in range(2500)
    )

    # SQLite caps a statement at 999 parameters, so its bulk_update needs more statements.
    with django_assert_max_num_queries(12 if connection.vendor == "postgresql" else 20):
        assert audit.seal() == 2500

    assert audit.first_broken_link() == (None, 2500)


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_late_is_sealed_after_one_with_a_higher_id(officer):
    """A request still open (its event inserted, not committed) neither blocks another request
    recording an event nor a sealer; its event joins the chain after it commits."""
    _require_postgresql()
    inserted, may_commit, late = threading.Event(), threading.Event(), {}

    def slow_request():
        try:
            with transaction.atomic():
                late["event"] = audit.record("test.late", by=officer)
                inserted.set()
                may_commit.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        assert inserted.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:  # a chain lock held by the slow request: fail
                cursor.execute("SET LOCAL lock_timeout = '5s'")
            early = audit.record("test.early", by=officer)
        sealed_while_open = audit.seal()
    finally:
        may_commit.set()
        thread.join(timeout=30)
    sealed_after_commit = audit.seal()

    assert late["event"].pk < early.pk
    assert (sealed_while_open, sealed_after_commit) == (1, 1)
    chain = _chain()
    assert [event.action for event in chain] == ["test.early", "test.late"]
    _assert_linked(chain)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "intact: 2 events checked, 0 awaiting sealing" in out.getvalue()


def test_the_database_refuses_to_update_or_delete_audit_events(officer):
    _require_postgresql()
    event = audit.record("test.event", by=officer)
    audit.seal()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(outcome="failure")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.get(pk=event.pk).outcome == "success"


FORGED_HASH = "0" * 64


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "failure"},
        {"hash": FORGED_HASH},
        {"prev_hash": FORGED_HASH},
        {"seq": 99},
        {"seq": None, "prev_hash": "", "hash": ""},  # unsealing
        {"seq": 99, "prev_hash": "", "hash": FORGED_HASH},  # re-sealing
    ],
    ids=["content", "hash", "prev_hash", "seq", "unsealing", "re-sealing"],
)
def test_the_database_refuses_any_change_to_a_sealed_event(officer, change):
    _require_postgresql()
    event = audit.record("test.event", by=officer)
    audit.seal()
    sealed = AuditEvent.objects.values().get(pk=event.pk)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(**change)

    assert AuditEvent.objects.values().get(pk=event.pk) == sealed


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "failure"},
        {"detail": {"n": 2}},
        {"at": JULY_8},
        {"actor": None},
        {"seq": 99, "prev_hash": "", "hash": FORGED_HASH, "outcome": "failure"},
        {"seq": 99},
        {"hash": FORGED_HASH},
        {"prev_hash": FORGED_HASH},
    ],
    ids=["content", "detail", "at", "actor", "sealing-and-content", "seq-alone", "hash-alone",
         "prev_hash-alone"],
)  # fmt: skip
def test_the_database_refuses_to_change_an_unsealed_event_other_than_by_sealing_it(officer, change):
    _require_postgresql()
    event = audit.record("test.event", by=officer, n=1)
    unsealed = AuditEvent.objects.values().get(pk=event.pk)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.values().get(pk=event.pk) == unsealed


def test_the_database_lets_an_unsealed_event_be_sealed(officer):
    _require_postgresql()
    event = audit.record("test.event", by=officer)

    updated = AuditEvent.objects.filter(pk=event.pk).update(seq=1, prev_hash="", hash=FORGED_HASH)

    assert updated == 1
    assert AuditEvent.objects.values_list("seq", "hash").get(pk=event.pk) == (1, FORGED_HASH)


def _tamper(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER may run
        cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER USER")


def test_verify_audit_passes_an_intact_trail(officer):
    for n in range(5):
        audit.record("test.event", by=officer, n=n)
    audit.seal()
    out = io.StringIO()

    call_command("verify_audit", stdout=out)

    assert "Audit trail intact: 5 events checked, 0 awaiting sealing." in out.getvalue()


def _three_sealed_then_two_waiting(officer):
    for n in range(3):
        audit.record("test.event", by=officer, n=n)
    audit.seal()
    for n in range(2):
        audit.record("test.event", by=officer, n=n)


def test_verify_audit_reports_the_events_awaiting_sealing_and_seals_nothing(officer):
    _three_sealed_then_two_waiting(officer)
    out = io.StringIO()

    call_command("verify_audit", stdout=out)

    assert "intact: 3 events checked, 2 awaiting sealing." in out.getvalue()
    assert audit.unsealed_count() == 2


def test_verify_audit_with_seal_seals_first(officer):
    _three_sealed_then_two_waiting(officer)
    out = io.StringIO()

    call_command("verify_audit", "--seal", stdout=out)

    assert "Sealed 2 events." in out.getvalue()
    assert "intact: 5 events checked, 0 awaiting sealing." in out.getvalue()
    _assert_linked(_chain())


def test_verify_audit_reports_the_first_tampered_row(officer):
    _require_postgresql()
    events = [audit.record("test.event", by=officer, n=n) for n in range(5)]
    audit.seal()
    _tamper("UPDATE portal_auditevent SET outcome = 'failure' WHERE id = %s", [events[2].pk])

    with pytest.raises(CommandError, match=rf"event #{events[2].pk}: its content"):
        call_command("verify_audit")


def test_verify_audit_reports_a_removed_row(officer):
    _require_postgresql()
    events = [audit.record("test.event", by=officer, n=n) for n in range(5)]
    audit.seal()
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])

    with pytest.raises(CommandError, match=rf"event #{events[2].pk}: does not follow"):
        call_command("verify_audit")


def test_verify_audit_reports_a_removed_row_even_if_the_rest_was_chained_again(officer):
    """Whoever removes a row and recomputes every later hash still leaves a gap in `seq`."""
    _require_postgresql()
    events = [audit.record("test.event", by=officer, n=n) for n in range(5)]
    audit.seal()
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    chain = _chain()
    for before, event in zip(chain, chain[1:], strict=False):
        event.prev_hash = before.hash
        event.hash = audit.content_hash(event)
        _tamper(
            "UPDATE portal_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
            [event.prev_hash, event.hash, event.pk],
        )

    with pytest.raises(CommandError, match=rf"event #{events[2].pk}: does not follow"):
        call_command("verify_audit")


def test_beat_seals_the_audit_trail_every_interval(officer):
    from portal.celery import app as celery_app
    from portal.tasks import seal_audit_task

    celery_app.loader.import_default_modules()  # what a worker does: autodiscovery
    entries = [
        e for e in celery_app.conf.beat_schedule.values() if e["task"] == seal_audit_task.name
    ]
    audit.record("test.event", by=officer)

    assert seal_audit_task.name in celery_app.tasks
    assert [entry["schedule"] for entry in entries] == [
        float(django_settings.AUDIT_SEAL_INTERVAL_SECONDS)
    ]
    assert seal_audit_task.apply().get() == 1
    assert audit.unsealed_count() == 0


@pytest.fixture
def auditor(agency):
    return UserFactory(email="auditor@agency.test", unit=agency, role=User.Role.AUDITOR)


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("officer", HTTPStatus.FORBIDDEN),
        ("sergeant", HTTPStatus.FORBIDDEN),
        ("auditor", HTTPStatus.OK),
        ("admin", HTTPStatus.OK),
    ],
)
def test_who_may_read_the_audit_trail(client, request, persona, expected):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(reverse("audit:events"))

    assert response.status_code == expected
    assert (">Audit</a>" in client.get(reverse("bulletins:feed")).text) is (
        expected == HTTPStatus.OK
    )


def test_an_auditor_publishes_nothing(client, auditor, sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17)
    client.force_login(auditor)

    create = client.get(reverse("bulletins:create"))
    publish = client.post(reverse("bulletins:publish", args=[draft.pk]))

    assert create.status_code == HTTPStatus.FORBIDDEN
    assert publish.status_code == HTTPStatus.NOT_FOUND


def test_the_audit_trail_filters_and_its_reading_is_audited(client, auditor, officer, sergeant):
    audit.record("bulletin.publish", by=sergeant, obj=sergeant)
    audit.record("auth.sign_in", by=officer)
    other_agency = make_unit("Suffolk County PD")
    outsider = UserFactory(email="suffolk@agency.test", unit=other_agency)
    audit.record("auth.sign_in", by=outsider)
    client.force_login(auditor)

    everything = client.get(reverse("audit:events"))
    sign_ins = client.get(reverse("audit:events"), {"action": "auth.", "actor": "officer@"})

    rows = sign_ins.context["page"].object_list
    assert [(e.action, e.actor_label) for e in rows] == [("auth.sign_in", officer.email)]
    assert "suffolk@agency.test" not in everything.text
    reads = AuditEvent.objects.filter(action="audit.view", actor=auditor)
    assert [e.detail["filters"] for e in reads.order_by("id")] == [
        {},
        {"action": "auth.", "actor": "officer@"},
    ]


def test_the_audit_trail_filters_by_date_and_object(client, admin, officer):
    with time_machine.travel(JULY_8):
        audit.record("person.change", by=admin, obj=officer)
    audit.record("person.change", by=admin, obj=admin)
    client.force_login(admin)

    by_date = client.get(
        reverse("audit:events"), {"date_from": "2026-07-08", "date_to": "2026-07-09"}
    )
    by_object = client.get(
        reverse("audit:events"), {"object_type": "portal.user", "object_id": str(admin.pk)}
    )

    assert [e.object_id for e in by_date.context["page"].object_list] == [str(officer.pk)]
    assert [e.object_id for e in by_object.context["page"].object_list] == [str(admin.pk)]


def test_the_audit_trail_exports_as_csv_and_the_export_is_audited(client, admin, officer):
    audit.record("auth.sign_in", by=officer)
    change = audit.record("person.change", by=admin, obj=officer)
    audit.seal()
    change.refresh_from_db()
    client.force_login(admin)

    response = client.get(reverse("audit:export"), {"action": "person.change"})

    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert lines[0].startswith("id,at,actor_label,action")
    assert lines[0].endswith(",seq,prev_hash,hash")
    assert len(lines) == 2 and ",person.change," in lines[1]
    assert lines[1].endswith(f",{change.seq},{change.prev_hash},{change.hash}")
    export = AuditEvent.objects.get(action="audit.export")
    assert export.detail["filters"] == {"action": "person.change"}


def test_the_audit_list_runs_few_queries_at_any_volume(
    client, admin, officer, django_assert_max_num_queries
):
    for n in range(300):
        audit.record("test.event", by=officer, n=n)
    client.force_login(admin)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("audit:events"))

    assert len(response.context["page"].object_list) == 100


def test_every_bulletin_transition_and_acknowledgement_is_audited(
    client, sergeant, officer, precinct17
):
    from tests.factories import published_bulletin

    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(officer)
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})

    assert {"bulletin.publish", "bulletin.acknowledge"} <= set(actions())


def test_a_role_change_in_the_admin_is_audited_with_the_new_role(client, admin, officer):
    client.force_login(admin)

    client.post(
        reverse("admin:portal_user_change", args=[officer.pk]),
        {
            "email": officer.email,
            "name": officer.name,
            "badge": officer.badge,
            "rank": officer.rank,
            "member_class": officer.member_class,
            "role": "supervisor",
            "unit": officer.unit_id,
            "is_active": "on",
        },
    )

    change = AuditEvent.objects.get(action="person.change")
    assert change.detail["role"] == "supervisor"
    assert change.actor == admin


# Bulletin bodies


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "<script>alert(1)</script>",
                    "<img src=x onerror=alert(1)>",
                    "[x](javascript:alert(1))",
                    "[x](JaVaScRiPt:alert(1))",
                    "[x](java\tscript:alert(1))",
                    "<a href='javascript:alert(1)'>x</a>",
                    "![x](javascript:alert(1))",
                    "<svg onload=alert(1)>",
                    "<iframe src=x>",
                    "[x]: javascript:alert(1)\n\n[x]",
                    "<<script>script>",
                    "&#106;avascript:",
                    '<a href="&#x6A;avascript:alert(1)">x</a>',
                    "`<script>`",
                    "\n\n",
                    "<style>*{}</style>",
                    "<p onmouseover=alert(1)>x</p>",
                    "](",
                    "[",
                    ")",
                ]
            ),  # fmt: skip
        ),
        max_size=12,
    )
)
def test_no_script_event_handler_or_javascript_url_survives_the_sanitizer(parts):
    parser = TagCollector()

    parser.feed(render_markdown("".join(parts)))

    for tag, attrs in parser.tags:
        assert tag not in ("script", "style", "iframe", "svg", "img", "object", "embed")
        for name, value in attrs:
            assert not name.startswith("on")
            url = re.sub(r"[\x00-\x20]", "", value or "").lower()
            assert not url.startswith(("javascript:", "vbscript:", "data:")), (name, value)


class TagCollector(HTMLParser):
    """Every start tag and its attributes, entities decoded, as a browser would read them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


# Demo data


def test_seed_demo_enrols_the_demo_supervisor_and_admin_with_the_documented_secret():
    call_command("seed_demo", stdout=io.StringIO())

    client = Client()
    sign_in(client, "sergeant@demo.test", "portal-demo-2026")
    client.post(reverse("mfa_authenticate"), {"code": totp_code(DEMO_TOTP_SECRET)})

    enrolled = Authenticator.objects.filter(type=Authenticator.Type.TOTP)
    assert sorted(enrolled.values_list("user__email", flat=True)) == [
        "admin@demo.test",
        "sergeant@demo.test",
    ]
    assert all(DEMO_TOTP_SECRET not in str(a.data) for a in enrolled)
    assert signed_in_user_id(client) == str(User.objects.get(email="sergeant@demo.test").pk)

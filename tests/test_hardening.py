"""Browser and deployment hardening: security headers, check --deploy, rate limits."""

import os
import re
import subprocess
import sys
import uuid
from http import HTTPStatus

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from tests.sign_in import START, sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


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
        "people": reverse("people"),
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
        "TRUSTED_PROXY_COUNT": "1",
        "AUDIT_CHAIN_KEY": uuid.uuid4().hex * 2,
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
    settings.TRUSTED_PROXY_COUNT_IS_SET = True  # its own test: tests/test_proxy.py

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

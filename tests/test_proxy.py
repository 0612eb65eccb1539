"""Behind a load balancer: one setting, TRUSTED_PROXY_COUNT, says which address in
X-Forwarded-For is the client's, for the sign-in rate limits and the audit trail alike."""

import os
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from portal import audit
from portal.checks import check_security_baseline
from portal.models import AuditEvent
from tests.sign_in import sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]
BALANCER = "10.0.0.10"
RATE_LIMITED = "Too many failed login attempts"


@pytest.fixture
def proxies(settings):
    """`proxies(n)`: the portal behind n proxies of its own, as TRUSTED_PROXY_COUNT=n sets it."""

    def trust(count):
        settings.TRUSTED_PROXY_COUNT = count
        settings.ALLAUTH_TRUSTED_PROXY_COUNT = count

    return trust


def failed_sign_in_from(forwarded_for, *, login="nobody@agency.test"):
    """A wrong password arriving through the balancer with this X-Forwarded-For (or none)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    client = Client(REMOTE_ADDR=BALANCER, headers=headers)
    return sign_in(client, login, "wrong-password-123")


def last_audited_ip():
    return AuditEvent.objects.filter(action="auth.sign_in_failed").latest("id").ip


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "client_address"),
    [
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "198.51.100.66, 203.0.113.7", "203.0.113.7"),  # the first one written by the client
        (2, "198.51.100.66, 203.0.113.7, 10.0.0.5", "203.0.113.7"),
        (1, None, BALANCER),  # the balancer's own request (health check)
    ],
)
def test_the_audit_records_the_address_the_outermost_trusted_proxy_saw(
    proxies, trusted, forwarded_for, client_address
):
    proxies(trusted)

    failed_sign_in_from(forwarded_for)

    assert last_audited_ip() == client_address


def test_with_no_trusted_proxy_a_forged_forwarded_for_is_ignored(proxies):
    proxies(0)

    failed_sign_in_from("203.0.113.7")

    assert last_audited_ip() == BALANCER


def test_fewer_forwarded_addresses_than_proxies_are_not_believed(proxies):
    """The request did not come through all of them: whatever the header says was not written
    by a proxy of ours."""
    proxies(2)
    request = RequestFactory().get("/", REMOTE_ADDR=BALANCER, HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert audit.client_ip(request) == BALANCER


def test_behind_the_balancer_one_persons_failures_do_not_rate_limit_the_agency(settings, proxies):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    proxies(1)

    attacker = [failed_sign_in_from("203.0.113.7", login=f"p{n}@agency.test") for n in range(4)]
    colleague = failed_sign_in_from("203.0.113.8")

    assert RATE_LIMITED in attacker[-1].text
    assert RATE_LIMITED not in colleague.text


def test_with_no_trusted_proxy_a_new_forged_address_each_time_does_not_escape_the_limit(
    settings, proxies
):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    proxies(0)

    attempts = [failed_sign_in_from(f"203.0.113.{n}", login=f"p{n}@agency.test") for n in range(4)]

    assert RATE_LIMITED in attempts[-1].text


def test_one_setting_drives_allauths_rate_limits_and_the_audit():
    env = {**os.environ, "TRUSTED_PROXY_COUNT": "2"}
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.TRUSTED_PROXY_COUNT, s.ALLAUTH_TRUSTED_PROXY_COUNT, s.TRUSTED_PROXY_COUNT_IS_SET)"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.split() == ["2", "2", "True"]


def test_check_deploy_warns_while_trusted_proxy_count_is_unset_and_says_why(settings):
    settings.TRUSTED_PROXY_COUNT_IS_SET = False

    problems = {problem.id: problem for problem in check_security_baseline(None)}

    assert "balancer" in problems["portal.W004"].msg
    assert "audit trail" in problems["portal.W004"].msg
    assert "TRUSTED_PROXY_COUNT" in problems["portal.W004"].hint


def test_check_deploy_accepts_an_explicit_zero(settings):
    settings.TRUSTED_PROXY_COUNT_IS_SET = True
    settings.TRUSTED_PROXY_COUNT = 0

    problems = [problem.id for problem in check_security_baseline(None)]

    assert "portal.W004" not in problems


def test_a_forwarded_header_shorter_than_the_proxies_is_a_refused_sign_in_not_an_error(proxies):
    proxies(2)

    response = failed_sign_in_from("203.0.113.7")

    assert response.status_code == HTTPStatus.OK
    assert last_audited_ip() == BALANCER


@pytest.mark.parametrize(
    ("peer", "written"),
    [
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),  # compressed, as stored
        (" 203.0.113.7 ", "203.0.113.7"),
        ("not an address", None),
        ("", None),
    ],
)
def test_the_peer_address_is_written_normalised_or_not_at_all(proxies, peer, written):
    proxies(0)
    request = RequestFactory().get("/", REMOTE_ADDR=peer)

    # Twice: the second answer comes from the addresses parsed lately, and is the same.
    assert audit.client_ip(request) == audit.client_ip(request) == written

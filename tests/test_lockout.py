"""Account lockout after repeated failed sign-ins or MFA codes, and unlocking."""

import datetime as dt
import re
from http import HTTPStatus

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from portal import mfa
from portal.models import AuditEvent, Lockout
from tests.factories import PASSWORD, TOTP_SECRET
from tests.sign_in import START, actions, sign_in, signed_in_user_id, totp_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


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

    admin_client.post(reverse("person_unlock", args=[officer.pk]))
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

"""The system-use notice on the sign-in page, accepted with a tick; the password rules; how
long the links that set a password last."""

import datetime as dt
import hashlib
import re
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from portal import people
from portal.models import AuditEvent
from portal.password_links import ResetLinkTokens, invitation_tokens
from tests.sign_in import START, actions, sign_in, signed_in_user_id

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


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


# Accepting the system-use notice (CJIS AC-8)


def test_signing_in_without_ticking_the_notice_is_refused_at_the_box(officer):
    client = Client()

    response = sign_in(client, officer.email, accept_notice=False)

    assert response.status_code == HTTPStatus.OK
    assert "Tick the box to accept the system use notice." in response.text
    assert 'id="id_accept_notice"' in response.text
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.filter(action__startswith="auth.").count() == 0


def test_accepting_the_notice_is_audited_with_the_text_accepted(officer):
    client = Client()

    response = sign_in(client, officer.email)

    assert response.status_code == HTTPStatus.FOUND
    accepted = AuditEvent.objects.get(action="auth.notice_accepted")
    assert accepted.actor == officer
    assert (
        accepted.detail["notice_sha256"]
        == hashlib.sha256(django_settings.SYSTEM_USE_NOTICE.encode()).hexdigest()
    )
    assert actions().index("auth.notice_accepted") < actions().index("auth.sign_in")


def test_a_wrong_password_with_the_box_ticked_records_no_acceptance(officer):
    sign_in(Client(), officer.email, "not-the-password-1")

    assert "auth.notice_accepted" not in actions()


def test_without_a_notice_there_is_no_box_to_tick(settings, officer):
    settings.SYSTEM_USE_NOTICE = ""
    client = Client()

    response = sign_in(client, officer.email, accept_notice=False)

    assert response.status_code == HTTPStatus.FOUND
    assert signed_in_user_id(client) == str(officer.pk)


# How long a link that sets a password lasts


def link_path(message):
    url = re.search(r"https?://\S+/password/reset/key/\S+/", message.body).group(0)
    return urlsplit(url).path


def opens(path):
    """Whether the link still opens the set-password form (allauth redirects to it)."""
    response = Client().get(path)
    return response.status_code == HTTPStatus.FOUND and "set-password" in response.url


@pytest.mark.parametrize(
    ("after", "still_opens"),
    [(dt.timedelta(minutes=59), True), (dt.timedelta(minutes=61), False)],
    ids=["59 minutes", "61 minutes"],
)
def test_a_password_reset_link_lasts_an_hour(officer, mailoutbox, after, still_opens):
    with time_machine.travel(START, tick=False) as traveller:
        Client().post(reverse("account_reset_password"), {"email": officer.email})
        traveller.shift(after)

        assert opens(link_path(mailoutbox[-1])) is still_opens


@pytest.mark.parametrize(
    ("after", "still_opens"),
    [(dt.timedelta(hours=23, minutes=59), True), (dt.timedelta(hours=24, minutes=1), False)],
    ids=["23 h 59", "24 h 01"],
)
def test_an_invitation_link_lasts_a_day(officer, mailoutbox, after, still_opens):
    with time_machine.travel(START, tick=False) as traveller:
        people.send_set_password_links([officer])
        traveller.shift(after)

        assert opens(link_path(mailoutbox[-1])) is still_opens


def test_a_reset_key_cannot_pass_for_an_invitation(officer):
    """The two kinds are signed apart: a reset key read with the invitation's lifetime fails."""
    with time_machine.travel(START, tick=False) as traveller:
        reset_key = ResetLinkTokens().make_token(officer)
        traveller.shift(dt.timedelta(hours=2))

        assert not ResetLinkTokens().check_token(officer, reset_key)
        assert not invitation_tokens.check_token(officer, reset_key)

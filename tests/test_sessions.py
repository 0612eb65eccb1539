"""Session limits: idle and absolute timeouts, sign-out, and a locked-down cookie."""

import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from portal.models import AuditEvent, User
from tests.sign_in import START, actions, sign_in, signed_in_user_id

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


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

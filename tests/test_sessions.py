"""Session limits: idle and absolute timeouts, sign-out, and a locked-down cookie."""

import datetime as dt
import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from portal.models import AuditEvent, User
from portal.sessions import AUTO_REFRESH_HEADER
from tests.factories import published_bulletin
from tests.sign_in import START, actions, sign_in, signed_in_user_id

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]
# What a page's own refresh sends (hx-headers on the polling element).
AUTO_REFRESH = {"HX-Request": "true", AUTO_REFRESH_HEADER: "true"}


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
            client.get(reverse("bulletins:feed_items"), headers=AUTO_REFRESH)

        response = client.get(reverse("bulletins:feed"))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))


@pytest.fixture
def watched_pages(sergeant, precinct17):
    """The supervisor's pages that refresh themselves, with the htmx target each one polls."""
    bulletin = published_bulletin(sergeant, precinct17)
    return {
        "coverage": (reverse("bulletins:coverage", args=[bulletin.pk]), "coverage-figures"),
        "overview": (reverse("bulletins:overview"), "overview-rows"),
    }


def _refresh_unattended(client, person, url, target, *, minutes, headers):
    """Every 30 s for `minutes` after signing in, a GET of the page's figures: the responses."""
    responses = []
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(person)
        for _ in range(minutes * 2):
            traveller.shift(dt.timedelta(seconds=30))
            responses.append(client.get(url, headers={**headers, "HX-Target": target}))
    return responses


@pytest.mark.parametrize("page", ["coverage", "overview"])
def test_forty_five_minutes_of_a_dashboard_refreshing_itself_end_the_session_at_thirty(
    client, sergeant, watched_pages, page
):
    url, target = watched_pages[page]

    responses = _refresh_unattended(client, sergeant, url, target, minutes=45, headers=AUTO_REFRESH)

    sent_to_sign_in = ["HX-Redirect" in response.headers for response in responses]
    assert sent_to_sign_in.index(True) == 60  # at 30:30, the first refresh past the idle limit
    assert responses[60]["HX-Redirect"].startswith(reverse("account_login"))
    assert all(response.status_code == HTTPStatus.OK for response in responses[:60])
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.get(action="auth.sign_out").detail["reason"] == "idle timeout"


def test_the_same_requests_made_by_a_person_keep_the_session(client, sergeant, watched_pages):
    url, target = watched_pages["coverage"]
    by_hand = {"HX-Request": "true"}

    responses = _refresh_unattended(client, sergeant, url, target, minutes=45, headers=by_hand)

    assert [response.status_code for response in responses] == [HTTPStatus.OK] * 90
    assert not any("HX-Redirect" in response.headers for response in responses)
    assert signed_in_user_id(client) == str(sergeant.pk)


def test_every_template_that_polls_marks_its_requests_as_refreshes():
    """A page added later that refreshes itself must say so too, or it keeps sessions alive."""
    marker = "hx-headers='" + json.dumps({AUTO_REFRESH_HEADER: "true"}) + "'"
    templates = Path(django_settings.BASE_DIR) / "templates"
    polling = [
        (path.name, tag)
        for path in templates.rglob("*.html")
        for tag in re.findall(r"<[^<>]*hx-trigger=\"[^\"]*every [^<>]*>", path.read_text())
    ]

    assert {name for name, _ in polling} >= {"_feed_items.html", "overview.html", "coverage.html"}
    assert [name for name, tag in polling if marker not in tag] == []


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

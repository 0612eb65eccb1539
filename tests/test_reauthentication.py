"""Re-authentication for publishing, lifting, audit export and role changes."""

import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.urls import reverse

from bulletins.models import Bulletin
from portal.models import User
from tests.factories import PASSWORD, draft_bulletin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


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


def test_changing_a_role_wants_a_recent_sign_in(client, admin, officer):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        traveller.shift(dt.timedelta(minutes=6))

        response = client.post(reverse("person_role", args=[officer.pk]), {"role": "supervisor"})

    assert response.url.startswith(reverse("account_reauthenticate"))
    officer.refresh_from_db()
    assert officer.role == User.Role.OFFICER


def test_exporting_the_audit_trail_wants_a_recent_sign_in(client, admin):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        traveller.shift(dt.timedelta(minutes=6))

        response = client.get(reverse("audit:export"))

    assert response.url.startswith(reverse("account_reauthenticate"))

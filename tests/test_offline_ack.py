"""Acknowledged offline (issue 22): a device sends later what the officer did in a dead zone; the
server records both times, once, and refuses with a clear message what no longer applies."""

import csv
import io
import json
import threading
import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from bulletins.api import tokens
from bulletins.models import Receipt, Recipient
from bulletins.services import authoring, offline_ack, reading
from portal.models import AuditEvent
from portal.offline import account_key
from tests.conftest import PortalClient
from tests.factories import published_bulletin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]

API = "/api/v1"
CHECK = [{"question": "Alone on a post?", "choices": ["Yes", "No - paired"], "answer": 1}]


@pytest.fixture
def order(sergeant, precinct17, officer, auxiliary, outsider):
    return published_bulletin(
        sergeant, precinct17, now=timezone.now() - timedelta(hours=1), title="Pair up"
    )


def device_time(minutes_ago):
    return (timezone.localtime() - timedelta(minutes=minutes_ago)).isoformat()


def send(client, bulletin, *, version=1, client_id=None, minutes_ago=28, account=None, **extra):
    payload = {
        "version": version,
        "client_id": str(client_id or uuid.uuid4()),
        "device_time": device_time(minutes_ago),
        **extra,
    }
    if account is not None:
        payload["account"] = account
    return client.post(
        reverse("bulletins:acknowledge_offline", args=[bulletin.pk]),
        json.dumps(payload),
        content_type="application/json",
        HTTP_USER_AGENT="PatrolPhone/2.0",
    )


def acknowledged(user, bulletin):
    return Receipt.objects.filter(user=user, bulletin=bulletin, acknowledged_at__isnull=False)


def refused(response, status, message):
    assert response.status_code == status, response.content
    assert response.json()["message"] == message
    return response.json()


# Recorded, with both times


def test_an_offline_acknowledgement_records_the_device_time_and_the_arrival(client, order, officer):
    client.force_login(officer)
    client.get(reverse("bulletins:detail", args=[order.pk]))  # the copy the device keeps
    client_id = uuid.uuid4()
    before = timezone.now()

    response = send(client, order, client_id=client_id, account=account_key(officer))

    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["status"] == "acknowledged"
    receipt = acknowledged(officer, order).get()
    assert receipt.method == Receipt.Method.OFFLINE
    assert receipt.client_id == client_id
    assert receipt.acknowledged_on_device_at < before - timedelta(minutes=27)
    assert receipt.acknowledged_at >= before
    assert receipt.statement == reading.ACKNOWLEDGEMENT_STATEMENT
    assert receipt.content_hash == order.versions.get().content_hash
    assert receipt.auth_method == "session"  # as any acknowledgement in the test client
    assert receipt.user_agent == "PatrolPhone/2.0"
    told = Recipient.objects.get(user=officer, bulletin=order)
    assert (told.acknowledged_version, told.acknowledged_method) == (1, "offline")
    event = AuditEvent.objects.get(action="bulletin.acknowledge", actor=officer)
    assert event.detail["method"] == "offline"
    assert event.detail["client_id"] == str(client_id)
    on_device = timezone.localtime(receipt.acknowledged_on_device_at)
    assert f"Acknowledged {on_device:%H:%M} on this device" in response.json()["message"]


def test_the_feed_follows_an_offline_acknowledgement(client, order, officer):
    client.force_login(officer)
    assert "Not yet acknowledged" in client.get(reverse("bulletins:feed")).content.decode()

    send(client, order)

    assert "Not yet acknowledged" not in client.get(reverse("bulletins:feed")).content.decode()


# Once


def test_the_same_client_id_again_answers_the_same_and_writes_nothing(
    client, order, officer, sergeant, settings
):
    client.force_login(officer)
    client_id = uuid.uuid4()

    first = send(client, order, client_id=client_id)
    # The answer was lost on the way and the device sends it again, past the time limit, after
    # the order changed: the same answer all the same.
    settings.OFFLINE_ACK_MAX_HOURS = 0
    authoring.amend_bulletin(
        order, by=sergeant, now=timezone.now(), reason="Armed", is_material=True, title="Armed"
    )
    again = send(client, order, client_id=client_id)

    assert (first.status_code, again.status_code) == (HTTPStatus.CREATED, HTTPStatus.OK)
    assert first.json()["message"] == again.json()["message"]
    assert acknowledged(officer, order).count() == 1
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_client_id_sent_twice_at_once_records_one_receipt(order, officer):
    client_id, barrier, outcomes = uuid.uuid4(), threading.Barrier(2), []
    device_at = timezone.now() - timedelta(minutes=10)

    def sent():
        try:
            barrier.wait(timeout=10)
            outcome = offline_ack.acknowledge_offline(
                order.pk, user=officer, version_number=1, client_id=client_id,
                device_at=device_at, now=timezone.now(),
            )  # fmt: skip
            outcomes.append((outcome.recorded, outcome.receipt.client_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=sent) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [(False, client_id), (True, client_id)]
    assert acknowledged(officer, order).count() == 1
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).count() == 1


def test_already_acknowledged_at_that_version_is_a_success_with_nothing_new(client, order, officer):
    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())
    client.force_login(officer)

    response = send(client, order)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["message"] == "You had already acknowledged this version."
    receipt = acknowledged(officer, order).get()
    assert (receipt.method, receipt.client_id) == (Receipt.Method.PORTAL, None)
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).count() == 1


def test_a_client_id_of_another_acknowledgement_is_refused(client, order, officer, sergeant):
    other = published_bulletin(sergeant, sergeant.unit, title="Check vehicles")
    client.force_login(officer)
    client_id = uuid.uuid4()
    send(client, order, client_id=client_id)

    response = send(client, other, client_id=client_id)

    refused(response, HTTPStatus.UNPROCESSABLE_ENTITY, offline_ack.ID_USED)
    assert not acknowledged(officer, other).exists()


# Refused, with a message for the officer and nothing written


def test_a_version_changed_meanwhile_is_refused_read_it_again(client, order, officer, sergeant):
    client.force_login(officer)
    authoring.amend_bulletin(
        order, by=sergeant, now=timezone.now(), reason="Now armed", is_material=True,
        title="Pair up, armed",
    )  # fmt: skip

    response = send(client, order, version=1)

    body = refused(response, HTTPStatus.CONFLICT, offline_ack.STALE)
    assert body["status"] == "stale"
    assert body["message"] == "This order changed while you were offline - read it again."
    assert not acknowledged(officer, order).exists()
    assert Recipient.objects.get(user=officer, bulletin=order).acknowledged_version is None


def test_a_correction_meanwhile_still_takes_the_version_shown(client, order, officer, sergeant):
    client.force_login(officer)
    authoring.amend_bulletin(
        order, by=sergeant, now=timezone.now(), reason="Typo", is_material=False,
        instruction=order.instruction.rstrip("."),
    )  # fmt: skip

    response = send(client, order, version=1)

    assert response.status_code == HTTPStatus.CREATED
    assert acknowledged(officer, order).get().version.number == 1


def test_older_than_the_limit_is_refused(client, sergeant, precinct17, officer, settings):
    order = published_bulletin(sergeant, precinct17, now=timezone.now() - timedelta(hours=14))
    settings.OFFLINE_ACK_MAX_HOURS = 12
    client.force_login(officer)

    too_old = send(client, order, minutes_ago=12 * 60 + 5)
    settings.OFFLINE_ACK_MAX_HOURS = 24
    in_time = send(client, order, minutes_ago=12 * 60 + 5)

    refused(too_old, HTTPStatus.UNPROCESSABLE_ENTITY, offline_ack.TOO_OLD.format(hours=12))
    assert in_time.status_code == HTTPStatus.CREATED


def test_a_device_time_later_than_the_arrival_is_refused_past_the_clock_skew(
    client, order, officer
):
    client.force_login(officer)

    ahead = send(client, order, minutes_ago=-5)
    assert not acknowledged(officer, order).exists()
    within_skew = send(client, order, minutes_ago=-1)

    refused(ahead, HTTPStatus.UNPROCESSABLE_ENTITY, offline_ack.AHEAD)
    assert within_skew.status_code == HTTPStatus.CREATED


def test_a_device_time_before_the_version_was_published_is_refused(client, order, officer):
    client.force_login(officer)

    response = send(client, order, minutes_ago=65)

    refused(response, HTTPStatus.UNPROCESSABLE_ENTITY, offline_ack.BEHIND)
    assert not acknowledged(officer, order).exists()


def test_an_order_with_a_check_of_understanding_is_not_acknowledged_offline(
    client, sergeant, precinct17, officer
):
    checked = published_bulletin(
        sergeant, precinct17, now=timezone.now() - timedelta(hours=1), questions=CHECK
    )
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[checked.pk])).content.decode()
    assert 'name="check"' in page  # offline-ack.js offers no offline Acknowledge then

    response = send(client, checked)

    body = refused(response, HTTPStatus.CONFLICT, offline_ack.CHECK)
    assert "Answer the check when you are back online" in body["message"]
    assert not acknowledged(officer, checked).exists()


def test_a_lifted_order_and_an_advisory_are_refused(client, order, officer, sergeant, precinct17):
    advisory = published_bulletin(
        sergeant, precinct17, now=timezone.now() - timedelta(hours=1), kind="advisory"
    )
    authoring.lift_bulletin(order, by=sergeant, now=timezone.now(), reason="Threat over")
    client.force_login(officer)

    lifted = send(client, order)
    not_an_order = send(client, advisory)

    refused(lifted, HTTPStatus.CONFLICT, offline_ack.LIFTED)
    refused(not_an_order, HTTPStatus.UNPROCESSABLE_ENTITY, offline_ack.NOT_AN_ORDER)
    assert not Receipt.objects.filter(acknowledged_at__isnull=False, user=officer).exists()


def test_another_persons_bulletin_is_not_found(client, order, outsider, sergeant, precinct17):
    client.force_login(outsider)

    response = send(client, order)

    refused(response, HTTPStatus.NOT_FOUND, "This bulletin is not available to you.")
    assert not Receipt.objects.filter(user=outsider).exists()


def test_what_was_saved_for_another_account_is_kept_for_them(client, order, officer, auxiliary):
    client.force_login(auxiliary)

    response = send(client, order, account=account_key(officer))

    refused(response, HTTPStatus.FORBIDDEN, "Saved on this device while someone else was signed "
            "in: it is sent when they sign in.")  # fmt: skip
    assert not Receipt.objects.filter(acknowledged_at__isnull=False, user=auxiliary).exists()


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "not-a-uuid"},
        {"device_time": "2026-12-04T09:12:00"},  # no offset
        {"device_time": "yesterday"},
        {"version": "one"},
        {"version": 0},
    ],
)
def test_bad_input_is_refused_and_changes_nothing(client, order, officer, change):
    client.force_login(officer)

    response = send(client, order, **change)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "acknowledge it again" in response.json()["message"]
    assert not Receipt.objects.filter(acknowledged_at__isnull=False, user=officer).exists()


def test_csrf_is_required(order, officer):
    client = PortalClient(enforce_csrf_checks=True)
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[order.pk]))
    token = page.context["csrf_token"]

    without = send(client, order)
    with_token = client.post(
        reverse("bulletins:acknowledge_offline", args=[order.pk]),
        json.dumps({"version": 1, "client_id": str(uuid.uuid4()), "device_time": device_time(3)}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=str(token),
    )

    assert without.status_code == HTTPStatus.FORBIDDEN
    assert with_token.status_code == HTTPStatus.CREATED


def test_anonymous_is_sent_to_sign_in(client, order, officer):
    response = send(client, order)

    assert response.status_code == HTTPStatus.FOUND
    assert not Receipt.objects.filter(acknowledged_at__isnull=False, user=officer).exists()


def test_acknowledging_a_new_version_online_says_so_on_the_recipient(
    client, order, officer, sergeant
):
    client.force_login(officer)
    send(client, order)
    authoring.amend_bulletin(
        order, by=sergeant, now=timezone.now(), reason="Now armed", is_material=True, title="Armed"
    )

    reading.acknowledge(order.pk, user=officer, version_number=2, now=timezone.now())

    told = Recipient.objects.get(user=officer, bulletin=order)
    assert (told.acknowledged_version, told.acknowledged_method) == (2, "")


# Both times in the evidence, the CSV and the API


@pytest.fixture
def acknowledged_offline(order, officer):
    now = timezone.now()
    offline_ack.acknowledge_offline(
        order.pk, user=officer, version_number=1, client_id=uuid.uuid4(),
        device_at=now - timedelta(minutes=28), now=now,
    )  # fmt: skip
    return acknowledged(officer, order).get()


def test_the_evidence_record_shows_both_times(
    client, order, officer, sergeant, acknowledged_offline
):
    receipt = acknowledged_offline
    on_device = timezone.localtime(receipt.acknowledged_on_device_at)
    received = timezone.localtime(receipt.acknowledged_at)
    client.force_login(sergeant)
    url = reverse("bulletins:evidence", args=[order.pk, officer.pk])

    page = client.get(url).content.decode()
    record = json.loads(client.get(url, {"format": "json"}).content)["record"]

    both = f"acknowledged {on_device:%H:%M} on the device while offline, received {received:%H:%M}"
    assert both in page
    version = record["versions"][0]
    assert version["acknowledged_on_device_at"] == on_device.isoformat(timespec="seconds")
    assert version["acknowledged_at"] == received.isoformat(timespec="seconds")
    assert version["how"] == both


def test_the_csv_shows_both_times_in_columns_at_the_end(
    client, order, officer, auxiliary, sergeant, acknowledged_offline
):
    reading.acknowledge(order.pk, user=auxiliary, version_number=1, now=timezone.now())
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:recipients_csv", args=[order.pk]))

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    assert header[-1] == "acknowledged on device at"
    by_email = {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    mine = by_email[officer.email]
    on_device = timezone.localtime(acknowledged_offline.acknowledged_on_device_at)
    assert mine["acknowledged on device at"] == on_device.isoformat(timespec="seconds")
    received = timezone.localtime(acknowledged_offline.acknowledged_at)
    assert mine["acknowledged at"] == received.isoformat(timespec="seconds")
    assert f"acknowledged {on_device:%H:%M} on the device" in mine["how acknowledged"]
    assert by_email[auxiliary.email]["acknowledged on device at"] == ""  # in the portal


def test_the_api_shows_both_times(client, officer, acknowledged_offline):
    client.force_login(officer)

    response = client.get(f"{API}/acknowledgements")

    item = response.json()["items"][0]
    assert item["acknowledged_on_device_at"] is not None
    assert item["acknowledged_on_device_at"] < item["acknowledged_at"]


def _bearer(user):
    _, secret = tokens.issue_token(user, name="Car", now=timezone.now(), is_read_only=False)
    return {"authorization": f"Bearer {secret}"}


def test_the_patrol_car_posts_an_offline_acknowledgement_with_a_token(client, order, officer):
    headers, url = _bearer(officer), f"{API}/bulletins/{order.pk}/acknowledge-offline"
    payload = {"version": 1, "client_id": str(uuid.uuid4()), "device_time": device_time(20)}

    first = client.post(url, payload, content_type="application/json", headers=headers)
    again = client.post(url, payload, content_type="application/json", headers=headers)

    assert (first.status_code, again.status_code) == (HTTPStatus.CREATED, HTTPStatus.OK)
    assert first.json()["recorded"] is True and again.json()["recorded"] is False
    acknowledgement = first.json()["acknowledgement"]
    assert acknowledgement["acknowledged_on_device_at"] < acknowledgement["acknowledged_at"]
    assert acknowledged(officer, order).get().auth_method.startswith("api-token:")


def test_the_api_refuses_as_the_page_does(client, order, officer, sergeant):
    headers, url = _bearer(officer), f"{API}/bulletins/{order.pk}/acknowledge-offline"
    too_old = {"version": 1, "client_id": str(uuid.uuid4()), "device_time": device_time(13 * 60)}
    old_response = client.post(url, too_old, content_type="application/json", headers=headers)
    authoring.amend_bulletin(
        order, by=sergeant, now=timezone.now(), reason="Armed", is_material=True, title="Armed"
    )
    stale = {"version": 1, "client_id": str(uuid.uuid4()), "device_time": device_time(5)}

    stale_response = client.post(url, stale, content_type="application/json", headers=headers)

    assert old_response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert old_response.json()["field"] == "device_time"
    assert stale_response.status_code == HTTPStatus.CONFLICT
    assert stale_response.json()["message"] == offline_ack.STALE
    assert not acknowledged(officer, order).exists()

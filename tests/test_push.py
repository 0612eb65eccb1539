"""Web Push: the Devices page, what is pushed to whom, and the sending, against a local push
service (tests/push_service.py) that decrypts every message and checks its VAPID signature."""

import json
import threading
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bulletins.management.commands.vapid_keys import new_pair
from bulletins.models import CannotComplyReason, NotificationEvent, PushDelivery
from bulletins.services import authoring, chasing, push, reading, responses
from portal.models import AuditEvent, PushSubscription
from tests.conftest import PortalClient
from tests.factories import UserFactory, published_bulletin
from tests.push_service import PushService

pytestmark = pytest.mark.django_db

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
SECRET_TITLE = "Named suspect Jonah Vance threatens 17th Pct"
SECRET_BODY = "Informant reports rifle in grey van plate KXB-4471"


@pytest.fixture
def service(settings):
    public, private = new_pair()
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = public, private
    settings.VAPID_SUBJECT = "mailto:operations@agency.test"
    settings.PUSH_SERVICE_HOSTS = ["127.0.0.1"]
    running = PushService(public).start()
    yield running
    running.stop()


def device(service, user, name="Chrome on Android"):
    """A browser of `user` that allowed alerts: its subscription JSON (the test keeps the
    device's private key in `service`)."""
    subscription = service.subscribe()
    PushSubscription.objects.create(
        user=user,
        endpoint=subscription["endpoint"],
        p256dh=subscription["keys"]["p256dh"],
        auth=subscription["keys"]["auth"],
        name=name,
        created_at=timezone.now(),
    )
    return subscription


def deliver(**kwargs):
    """What the after-commit tasks do: fan every pending outbox event out, then send."""
    pending = NotificationEvent.objects.filter(fanned_out_at__isnull=True)
    for outbox in pending.select_related("bulletin").order_by("pk"):
        push.fan_out(outbox)
    return push.send_pending(**kwargs)


def titles(service, subscription):
    return [message["title"] for message in service.to(subscription)]


# What is pushed, to whom, once


def test_an_immediate_order_reaches_every_device_of_each_person_told_once(
    service, sergeant, officer, auxiliary, outsider
):
    phone, laptop = device(service, officer), device(service, officer, "Firefox on Windows")
    auxiliary_phone, outsider_phone = device(service, auxiliary), device(service, outsider)

    order = published_bulletin(sergeant, officer.unit, priority=1, title="No solo posts")
    first = deliver()
    again = deliver()

    expected = {
        "title": "Officer safety - immediate",
        "body": "No solo posts",
        "url": reverse("bulletins:detail", args=[order.pk]),
        "tag": f"bulletin-{order.pk}",
    }
    assert service.to(phone) == service.to(laptop) == service.to(auxiliary_phone) == [expected]
    assert service.to(outsider_phone) == []
    assert (first.sent, again.claimed) == (3, 0)
    assert service.refused == []
    assert not PushDelivery.objects.filter(sent_at__isnull=True).exists()
    assert set(PushDelivery.objects.values_list("status", "outcome")) == {(201, "sent")}
    assert PushSubscription.objects.filter(user=officer, last_pushed_at__isnull=False).count() == 2


def test_queueing_again_writes_no_second_row(service, sergeant, officer):
    device(service, officer)
    published_bulletin(sergeant, officer.unit, priority=1)
    outbox = NotificationEvent.objects.get(event="published")
    push.fan_out(outbox)

    assert push.queue_pushes(outbox.pk) == 0
    assert PushDelivery.objects.count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "advisory", "priority": 3},
        {"kind": "advisory", "priority": 2},
        {"kind": "order", "priority": 2},
        {"kind": "order", "priority": 3},
    ],
)
def test_what_is_not_officer_safety_immediate_is_not_pushed(service, sergeant, officer, fields):
    phone = device(service, officer)

    published_bulletin(sergeant, officer.unit, **fields)
    deliver()

    assert service.to(phone) == []
    assert not PushDelivery.objects.exists()


def test_push_off_without_keys_writes_nothing_and_costs_no_query(
    settings, sergeant, officer, django_assert_num_queries
):
    settings.VAPID_PUBLIC_KEY = settings.VAPID_PRIVATE_KEY = ""
    PushSubscription.objects.create(
        user=officer, endpoint="https://fcm.googleapis.com/fcm/send/x", p256dh="k", auth="a",
        name="x", created_at=timezone.now(),
    )  # fmt: skip
    published_bulletin(sergeant, officer.unit, priority=1)
    outbox = NotificationEvent.objects.get(event="published")

    with django_assert_num_queries(0):
        assert push.queue_pushes(outbox) == 0
    push.fan_out(outbox)
    assert not PushDelivery.objects.exists()


def test_no_restricted_text_in_any_payload_of_an_intelligence_bulletin(
    service, sergeant, officer, auxiliary
):
    phone, other = device(service, officer), device(service, auxiliary)
    intel = published_bulletin(
        sergeant, officer.unit, kind="intelligence", priority=1,
        title=SECRET_TITLE, body=SECRET_BODY, instruction=SECRET_BODY,
    )  # fmt: skip
    deliver()
    every_event = [
        push.payload(NotificationEvent(bulletin=intel, event=event, version=1, detail={}))
        for event in push.PUSHED
    ]

    assert titles(service, phone) == ["New restricted bulletin - open the portal"]
    assert service.to(phone)[0]["body"] == ""
    assert service.to(phone) == service.to(other)
    for message in service.to(phone) + every_event:
        raw = json.dumps(message)
        for secret in ("Jonah", "Vance", "rifle", "KXB", "van", "17th Pct"):
            assert secret not in raw
        assert len(raw.encode()) < 4096


def test_an_exercise_says_exercise(service, sergeant, officer):
    phone = device(service, officer)

    published_bulletin(sergeant, officer.unit, priority=1, is_exercise=True)
    deliver()

    assert titles(service, phone) == ["EXERCISE - Officer safety - immediate"]


def test_a_material_amendment_is_pushed_to_who_had_acknowledged(
    service, sergeant, officer, auxiliary
):
    acknowledged, silent = device(service, officer), device(service, auxiliary)
    now = timezone.now()
    order = published_bulletin(sergeant, officer.unit, now=now, priority=1)
    reading.acknowledge(order.pk, user=officer, version_number=1, now=now)

    authoring.amend_bulletin(order, by=sergeant, now=now, reason="Pairs of three",
                             is_material=True, instruction="Work in threes.")  # fmt: skip
    deliver()

    assert titles(service, acknowledged) == [
        "Officer safety - immediate",
        "Changed - acknowledge again",
    ]
    assert titles(service, silent) == ["Officer safety - immediate"]


def test_reminders_go_to_who_has_not_acknowledged_and_escalations_to_their_supervisors(
    service, sergeant, officer, auxiliary
):
    late, done, boss = (
        device(service, auxiliary),
        device(service, officer),
        device(service, sergeant),
    )
    now = timezone.now()
    order = published_bulletin(sergeant, officer.unit, now=now, priority=1)
    for person in (officer, sergeant):
        reading.acknowledge(order.pk, user=person, version_number=1, now=now)

    for minutes in (16, 31):
        chasing.chase(now + timedelta(minutes=minutes))
    deliver()

    assert "Reminder: acknowledge" in titles(service, late)
    assert "Reminder: acknowledge" not in titles(service, done)
    assert titles(service, boss).count("Not acknowledged - see who") == 1
    assert "Not acknowledged - see who" not in titles(service, late)


def test_each_cannot_comply_is_pushed_to_the_supervisors_not_the_officer(
    service, agency, sergeant, officer, outsider
):
    officer_phone, sergeant_phone = device(service, officer), device(service, sergeant)
    outsider_phone = device(service, outsider)
    reason = CannotComplyReason.objects.create(agency=agency, label="No partner", position=0)
    order = published_bulletin(sergeant, officer.unit, priority=2)

    responses.cannot_comply(order, user=officer, reason=reason, detail="Alone at post",
                            now=timezone.now())  # fmt: skip
    deliver()

    assert titles(service, sergeant_phone) == ["An officer cannot comply"]
    assert service.to(officer_phone) == service.to(outsider_phone) == []
    assert "Alone at post" not in json.dumps(service.to(sergeant_phone))


# Sending: expiry, retries, claims


@pytest.mark.parametrize("status", [404, 410])
def test_an_expired_subscription_is_removed(service, sergeant, officer, status):
    gone, kept = device(service, officer), device(service, officer)
    service.answers[gone["endpoint"].rsplit("/", 1)[1]] = [status]

    published_bulletin(sergeant, officer.unit, priority=1)
    result = deliver()

    assert result.gone == 1
    assert list(officer.push_subscriptions.values_list("endpoint", flat=True)) == [kept["endpoint"]]
    assert len(service.to(kept)) == 1


def test_a_5xx_is_retried_by_id_after_a_delay_then_sent_once(service, sergeant, officer):
    phone = device(service, officer)
    service.answers[phone["endpoint"].rsplit("/", 1)[1]] = [503, 429]
    published_bulletin(sergeant, officer.unit, priority=1)

    first = deliver()
    row = PushDelivery.objects.get()
    sweep = push.send_pending()  # not sent again before its delay: only by id
    second = push.send_pending(delivery_ids=list(first.retry))
    third = push.send_pending(delivery_ids=list(second.retry))
    fourth = push.send_pending(delivery_ids=list(first.retry))

    assert (row.outcome, row.status, first.retry) == ("retry", 503, {row.pk: 1})
    assert sweep.claimed == 0
    assert second.retry == {row.pk: 2}
    assert third.sent == 1 and fourth.claimed == 0
    assert len(service.to(phone)) == 1
    assert PushDelivery.objects.values_list("attempts", "outcome").get() == (3, "sent")


def test_retries_back_off_like_email_and_stop(service, settings, sergeant, officer):
    settings.PUSH_MAX_ATTEMPTS = 2
    phone = device(service, officer)
    service.answers[phone["endpoint"].rsplit("/", 1)[1]] = [500, 500, 500]
    published_bulletin(sergeant, officer.unit, priority=1)

    first = deliver()
    last = push.send_pending(delivery_ids=list(first.retry))

    assert last.retry == {} and last.failed == 1
    assert PushDelivery.objects.get().outcome == "failed"
    assert 5 <= push.retry_delay(1) <= 10
    assert 20 <= push.retry_delay(3) <= 40
    assert push.retry_delay(20) <= 600


def test_an_unreachable_push_service_is_retried(service, settings, sergeant, officer):
    phone = device(service, officer)
    PushSubscription.objects.filter(endpoint=phone["endpoint"]).update(
        endpoint="http://127.0.0.1:9/push/nobody"
    )
    published_bulletin(sergeant, officer.unit, priority=1)

    result = deliver()

    assert len(result.retry) == 1
    assert PushDelivery.objects.get().outcome == "retry"


def test_a_row_claimed_by_a_worker_that_died_is_never_sent_again(service, sergeant, officer):
    phone = device(service, officer)
    published_bulletin(sergeant, officer.unit, priority=1)
    push.fan_out(NotificationEvent.objects.get(event="published"))
    now = timezone.now()
    claimed = push._claim(event_id=None, delivery_ids=None, batch_size=500, now=now)  # then dies

    event_id, row_id = claimed[0][2], claimed[0][0]
    after = [
        push.send_pending(),
        push.send_pending(event_id),
        push.send_pending(delivery_ids=[row_id]),
    ]
    expired = push.expire_leases(now + timedelta(seconds=settings.PUSH_LEASE_SECONDS + 1))
    later = [
        push.send_pending(),
        push.send_pending(event_id),
        push.send_pending(delivery_ids=[row_id]),
    ]

    assert len(claimed) == 1
    assert [result.claimed for result in after + later] == [0] * 6
    assert expired == 1
    assert PushDelivery.objects.get().outcome == "unknown"
    assert service.to(phone) == []


def test_one_keep_alive_connection_and_one_vapid_signature_per_batch(service, sergeant, officer):
    for _ in range(6):
        device(service, officer)
    published_bulletin(sergeant, officer.unit, priority=1)

    deliver()

    assert len(service.messages) == 6
    assert service.connections == 1
    assert len({message.headers["Authorization"] for message in service.messages}) == 1
    assert {message.claims["aud"] for message in service.messages} == {service.origin}
    assert {message.headers["Urgency"] for message in service.messages} == {"high"}


def test_an_endpoint_no_longer_allowed_is_not_posted_to(service, settings, sergeant, officer):
    phone = device(service, officer)
    published_bulletin(sergeant, officer.unit, priority=1)
    settings.PUSH_SERVICE_HOSTS = ["fcm.googleapis.com"]

    result = deliver()

    assert service.to(phone) == [] and result.failed == 1
    assert PushDelivery.objects.get().outcome == "refused"


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_one_row_twice(service, precinct17, sergeant):
    people = [UserFactory(email=f"p{n}@agency.test", unit=precinct17) for n in range(30)]
    phones = [device(service, person) for person in people]
    published_bulletin(sergeant, precinct17, priority=1)
    push.fan_out(NotificationEvent.objects.get(event="published"))
    service.delay = 0.002
    results = []

    def worker():
        try:
            results.append(push.send_pending(batch_size=4))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result.sent for result in results) == 30
    assert all(result.sent for result in results)  # each worker took part
    assert [len(service.to(phone)) for phone in phones] == [1] * 30


# The Devices page


def subscription_json(service):
    return service.subscribe()


def add(client, data, **headers):
    return client.post(
        reverse("bulletins:device_add"),
        data=json.dumps(data),
        content_type="application/json",
        headers={"User-Agent": ANDROID_CHROME, **headers},
    )


def test_alert_this_device_keeps_the_subscription_named_by_the_browser(service, client, officer):
    client.force_login(officer)
    subscription = subscription_json(service)

    response = add(client, subscription)
    page = client.get(reverse("bulletins:devices"))

    assert response.status_code == HTTPStatus.CREATED
    saved = officer.push_subscriptions.get()
    assert (saved.endpoint, saved.name) == (subscription["endpoint"], "Chrome on Android")
    assert AuditEvent.objects.filter(action="push.device_added", actor=officer).count() == 1
    assert b"Alert this device" in page.content and b"Chrome on Android" in page.content


def test_the_same_device_moves_to_whoever_last_asked_for_alerts(
    service, client, officer, auxiliary
):
    subscription = subscription_json(service)
    client.force_login(officer)
    add(client, subscription)
    client.force_login(auxiliary)

    add(client, subscription)

    assert PushSubscription.objects.get().user == auxiliary


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoint": "https://169.254.169.254/latest/meta-data"}, "not one the portal sends to"),
        ({"endpoint": "https://internal.agency.test/push/x"}, "not one the portal sends to"),
        ({"endpoint": "http://fcm.googleapis.com/fcm/send/x"}, "must use https"),
        ({"endpoint": "http://10.0.0.5/push/x"}, "must use https"),
        ({"endpoint": "https://user:pw@fcm.googleapis.com/x"}, "not a valid web address"),
        ({"endpoint": ""}, "missing"),
        ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "P-256"),
        ({"keys": {"auth": "AAAA"}}, "P-256"),
        ({"keys": "nothing"}, "did not send a subscription"),
    ],
)
def test_a_bad_subscription_is_refused_with_a_clear_message(
    service, client, officer, change, message
):
    client.force_login(officer)
    subscription = {**subscription_json(service), **change}

    response = add(client, subscription)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.json()["error"]
    assert not PushSubscription.objects.exists()


def test_a_bad_auth_secret_is_refused(service, client, officer):
    client.force_login(officer)
    subscription = subscription_json(service)
    subscription["keys"]["auth"] = "c2hvcnQ"

    response = add(client, subscription)

    assert "16 bytes" in response.json()["error"]
    assert not PushSubscription.objects.exists()


def test_not_json_is_refused(service, client, officer):
    client.force_login(officer)

    response = client.post(reverse("bulletins:device_add"), data="x", content_type="text/plain")

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_public_https_push_services_are_allowed_by_default():
    assert push.endpoint_error("https://fcm.googleapis.com/fcm/send/abc") == ""
    assert push.endpoint_error("https://web.push.apple.com/QK1") == ""
    assert push.endpoint_error("https://wns2-by3p.notify.windows.com/w/?token=1") == ""
    assert push.endpoint_error("https://evilpush.apple.com.attacker.test/x") != ""
    assert push.endpoint_error("http://127.0.0.1:8000/push/x") != ""  # not listed by default


def test_adding_a_device_needs_the_csrf_token(service, officer):
    client = PortalClient(enforce_csrf_checks=True)
    client.force_login(officer)

    response = add(client, subscription_json(service))

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not PushSubscription.objects.exists()


def test_without_keys_the_page_has_no_button_and_nothing_is_kept(client, officer):
    client.force_login(officer)

    page = client.get(reverse("bulletins:devices"))
    response = add(client, {"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": {}})

    assert page.status_code == HTTPStatus.OK
    assert b"data-push-subscribe" not in page.content
    assert b"not switched on" in page.content
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not PushSubscription.objects.exists()


def test_stop_alerts_removes_only_my_own_device(service, client, officer, outsider):
    mine, theirs = device(service, officer), device(service, outsider)
    client.force_login(officer)
    my_row = PushSubscription.objects.get(endpoint=mine["endpoint"])
    their_row = PushSubscription.objects.get(endpoint=theirs["endpoint"])

    refused = client.post(reverse("bulletins:device_stop", args=[their_row.pk]))
    page = client.get(reverse("bulletins:devices"))
    stopped = client.post(reverse("bulletins:device_stop", args=[my_row.pk]))

    assert refused.status_code == HTTPStatus.NOT_FOUND
    assert their_row.endpoint.encode() not in page.content
    assert stopped.status_code == HTTPStatus.FOUND
    assert list(PushSubscription.objects.all()) == [their_row]
    assert AuditEvent.objects.filter(action="push.device_removed", actor=officer).count() == 1


def test_stop_alerts_is_post_only(service, client, officer):
    device(service, officer)
    client.force_login(officer)
    row = PushSubscription.objects.get()

    response = client.get(reverse("bulletins:device_stop", args=[row.pk]))

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert PushSubscription.objects.exists()


def test_signed_out_people_cannot_add_devices(service):
    response = add(Client(), subscription_json(service))

    assert response.status_code == HTTPStatus.FOUND
    assert not PushSubscription.objects.exists()


def test_device_names():
    from bulletins.push_views import device_name

    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 " \
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"  # fmt: skip
    edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " \
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"  # fmt: skip
    assert device_name(ANDROID_CHROME) == "Chrome on Android"
    assert device_name(iphone) == "Safari on iPhone"
    assert device_name(edge) == "Edge on Windows"
    assert device_name("") == "Browser"

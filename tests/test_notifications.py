import smtplib
from collections import Counter

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from bulletins import notifications
from bulletins.models import Notification, NotificationEvent
from bulletins.tasks import send_notifications_task
from portal.models import User
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db


class CountingBackend(EmailBackend):
    """The locmem backend, counting connections (one per batch)."""

    opened = 0

    def open(self):
        CountingBackend.opened += 1
        return super().open()


class FlakyBackend(EmailBackend):
    """An SMTP server that drops the connection once, after `fail_after` messages."""

    fail_after = 0
    failed = False

    def send_messages(self, messages):
        if not FlakyBackend.failed and len(mail.outbox) >= FlakyBackend.fail_after:
            FlakyBackend.failed = True
            raise smtplib.SMTPServerDisconnected("connection lost")
        return super().send_messages(messages)


@pytest.fixture
def crowd(precinct17):
    return UserFactory.create_batch(448, unit=precinct17)


def deliver_all():
    for outbox in NotificationEvent.objects.all():
        notifications.fan_out(outbox)
    return send_notifications_task.apply().get()


def test_notifications_go_out_in_batches_one_per_person(settings, sergeant, officer, crowd):
    settings.EMAIL_BACKEND = "tests.test_notifications.CountingBackend"
    CountingBackend.opened = 0
    bulletin = published_bulletin(sergeant, sergeant.unit, title="Pair up")

    sent = deliver_all()

    assert sent == 450
    assert CountingBackend.opened == 3
    addressees = Counter(message.to[0] for message in mail.outbox)
    assert len(addressees) == 450
    assert set(addressees.values()) == {1}
    message = mail.outbox[0]
    assert "Pair up" in message.subject
    assert f"/bulletins/{bulletin.pk}/" in message.body
    assert message.alternatives[0][1] == "text/html"


def test_delivering_twice_sends_nothing_twice(sergeant, officer):
    published_bulletin(sergeant, sergeant.unit)

    deliver_all()
    deliver_all()

    assert sorted(m.to[0] for m in mail.outbox) == sorted([officer.email, sergeant.email])
    assert Notification.objects.count() == 2


def test_a_failing_smtp_server_is_retried_without_duplicates(settings, sergeant, officer, crowd):
    settings.EMAIL_BACKEND = "tests.test_notifications.FlakyBackend"
    FlakyBackend.fail_after, FlakyBackend.failed = 120, False
    published_bulletin(sergeant, sergeant.unit)

    deliver_all()

    assert FlakyBackend.failed
    addressees = Counter(message.to[0] for message in mail.outbox)
    assert len(addressees) == 450
    assert set(addressees.values()) == {1}
    assert not Notification.objects.filter(sent_at__isnull=True).exists()
    retried = Notification.objects.get(attempts=2)
    assert retried.last_error == "connection lost"


def test_people_who_opted_out_get_no_email_for_non_urgent_orders(sergeant, officer):
    User.objects.filter(pk=officer.pk).update(wants_email=False)
    routine = published_bulletin(sergeant, sergeant.unit, title="Routine", priority=3)
    urgent = published_bulletin(sergeant, sergeant.unit, title="Urgent", priority=1)

    deliver_all()

    told = {(m.to[0], m.subject.split(": ", 1)[1]) for m in mail.outbox}
    assert (officer.email, routine.title) not in told
    assert (officer.email, urgent.title) in told
    assert (sergeant.email, routine.title) in told


def test_information_bulletins_are_not_emailed(sergeant, officer):
    published_bulletin(sergeant, sergeant.unit, kind="information", priority=3)

    deliver_all()

    assert mail.outbox == []
    assert not NotificationEvent.objects.exists()


def test_outbox_row_is_written_with_the_transition_and_delivered_after_commit(
    sergeant, officer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        bulletin = published_bulletin(sergeant, sergeant.unit, now=timezone.now())

    outbox = NotificationEvent.objects.get(bulletin=bulletin)
    assert (outbox.event, outbox.key, outbox.fanned_out_at) == ("published", "v1", None)
    deliveries = [c for c in callbacks if c.__module__ != "portal.stamps"]
    assert len(deliveries) == 1

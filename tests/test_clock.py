"""The clock as a service, with the time passed in (`now=`). Worker tests: test_worker.py."""

import threading
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from bulletins import notifications
from bulletins.models import Bulletin, Notification, NotificationEvent, Recipient
from bulletins.services import authoring, clock
from portal.models import AuditEvent
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db


def notified(bulletin, event):
    """Who is emailed for `event`: fans the outbox rows out as the worker does."""
    outboxes = NotificationEvent.objects.filter(bulletin=bulletin, event=event)
    for outbox in outboxes:
        notifications.fan_out(outbox)
    emails = Notification.objects.filter(event__in=outboxes).values_list("user__email", flat=True)
    return sorted(emails)


def events(bulletin, action):
    return AuditEvent.objects.filter(object_id=str(bulletin.pk), action=action).count()


def test_sweep_marks_a_fixed_term_bulletin_expired_once(sergeant, officer):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, expires_at=now + timedelta(hours=36)
    )

    early = clock.sweep(now + timedelta(hours=35))
    first = clock.sweep(now + timedelta(hours=36))
    again = clock.sweep(now + timedelta(hours=37))

    bulletin.refresh_from_db()
    assert early["ended"] == 0
    assert (first["ended"], again["ended"]) == (1, 0)
    assert bulletin.status == Bulletin.Status.EXPIRED
    assert bulletin.ended_at == bulletin.expires_at
    assert events(bulletin, "bulletin.expire") == 1
    assert NotificationEvent.objects.filter(bulletin=bulletin, event="ended").count() == 1
    assert notified(bulletin, "ended") == sorted([officer.email, sergeant.email])


def test_expiry_closes_obligations_as_ended_before_acknowledged(sergeant, officer):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, expires_at=now + timedelta(hours=1)
    )
    from bulletins.services import reading

    reading.acknowledge(bulletin.pk, user=sergeant, version_number=1, now=now)

    clock.sweep(now + timedelta(hours=2))

    later = now + timedelta(hours=2)
    states = {
        r.user.email: r.obligation_at(later)
        for r in Recipient.objects.filter(bulletin=bulletin).select_related("user", "bulletin")
    }
    assert states == {officer.email: "ended before acknowledged", sergeant.email: "acknowledged"}


def test_scheduled_bulletin_takes_effect_and_notifies_once(sergeant, officer):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, effective_at=now + timedelta(hours=1)
    )
    assert not NotificationEvent.objects.filter(bulletin=bulletin).exists()

    clock.sweep(now + timedelta(minutes=59))
    clock.sweep(now + timedelta(hours=1))
    clock.sweep(now + timedelta(hours=1, seconds=30))

    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert events(bulletin, "bulletin.take_effect") == 1
    assert NotificationEvent.objects.filter(bulletin=bulletin, event="published").count() == 1
    assert notified(bulletin, "published") == sorted([officer.email, sergeant.email])


def test_scheduled_bulletin_reaches_people_who_joined_before_it_took_effect(sergeant, precinct17):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, precinct17, now=now, effective_at=now + timedelta(hours=1)
    )
    newcomer = UserFactory(email="new@agency.test", unit=precinct17)

    clock.sweep(now + timedelta(hours=1))

    assert Recipient.objects.filter(bulletin=bulletin, user=newcomer).exists()


def test_until_further_notice_order_is_reviewed_never_expires(sergeant, officer, admin):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, review_interval=timedelta(hours=72)
    )

    clock.sweep(now + timedelta(hours=71))
    assert not NotificationEvent.objects.filter(event="review").exists()
    clock.sweep(now + timedelta(hours=72))
    clock.sweep(now + timedelta(hours=73))
    assert notified(bulletin, "review") == [sergeant.email]

    clock.sweep(now + timedelta(hours=72 + 11))
    bulletin.refresh_from_db()
    assert bulletin.review_overdue_at is None
    clock.sweep(now + timedelta(hours=72 + 12))
    bulletin.refresh_from_db()
    assert bulletin.review_overdue_at is not None
    assert notified(bulletin, "review_overdue") == [admin.email]

    much_later = now + timedelta(days=60)
    clock.sweep(much_later)
    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert Bulletin.objects.in_force(much_later).filter(pk=bulletin.pk).exists()
    assert events(bulletin, "bulletin.review_requested") == 1
    assert events(bulletin, "bulletin.review_overdue") == 1


def test_reaffirm_resets_the_review_clock(sergeant):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, review_interval=timedelta(hours=72)
    )
    clock.sweep(now + timedelta(hours=72))
    clock.sweep(now + timedelta(hours=90))
    bulletin.refresh_from_db()
    assert bulletin.review_overdue_at is not None

    reaffirmed_at = now + timedelta(hours=91)
    clock.reaffirm_bulletin(bulletin, by=sergeant, now=reaffirmed_at)
    clock.sweep(reaffirmed_at + timedelta(hours=71))

    bulletin.refresh_from_db()
    assert bulletin.review_overdue_at is None
    assert bulletin.review_requested_at is None
    assert bulletin.last_reaffirmed_by == sergeant
    assert bulletin.next_review_at == reaffirmed_at + timedelta(hours=72)
    clock.sweep(reaffirmed_at + timedelta(hours=72))
    bulletin.refresh_from_db()
    assert bulletin.review_requested_at == reaffirmed_at + timedelta(hours=72)


def test_fixed_term_bulletin_cannot_be_reaffirmed(sergeant):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, expires_at=now + timedelta(hours=5)
    )

    with pytest.raises(ValidationError):
        clock.reaffirm_bulletin(bulletin, by=sergeant, now=now)

    assert events(bulletin, "bulletin.reaffirm") == 0


def test_review_goes_to_the_issuers_unit_supervisors_when_the_issuer_is_gone(sergeant, precinct17):
    now = timezone.now()
    deputy = UserFactory(email="lt@agency.test", unit=precinct17, role="supervisor")
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, review_interval=timedelta(hours=1)
    )
    sergeant.is_active = False
    sergeant.save()

    clock.sweep(now + timedelta(hours=1))

    assert notified(bulletin, "review") == [deputy.email]


def test_scheduled_lift_ends_it_as_lifted_at_its_time(sergeant, officer):
    now = timezone.now()
    bulletin = published_bulletin(sergeant, sergeant.unit, now=now)
    at = now + timedelta(hours=8)

    clock.schedule_lift(bulletin, by=sergeant, now=now, at=at, reason="Threat level lowered")
    assert Bulletin.objects.in_force(at - timedelta(seconds=1)).filter(pk=bulletin.pk).exists()
    assert not Bulletin.objects.in_force(at).filter(pk=bulletin.pk).exists()
    clock.sweep(at)

    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.LIFTED
    assert bulletin.state_at(at) == Bulletin.Status.LIFTED
    assert bulletin.lift_reason == "Threat level lowered"
    assert notified(bulletin, "lifted") == sorted([officer.email, sergeant.email])


def test_extension_moves_the_end(sergeant):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, expires_at=now + timedelta(hours=36)
    )

    authoring.amend_bulletin(
        bulletin,
        by=sergeant,
        now=now + timedelta(hours=30),
        reason="Extended by order of the PC",
        is_material=False,
        expires_at=now + timedelta(hours=48),
    )
    clock.sweep(now + timedelta(hours=37))

    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE
    clock.sweep(now + timedelta(hours=48))
    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.EXPIRED


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_record_each_transition_once(sergeant, officer):
    now = timezone.now()
    bulletins = [
        published_bulletin(sergeant, sergeant.unit, now=now, expires_at=now + timedelta(hours=1))
        for _ in range(5)
    ] + [
        published_bulletin(
            sergeant,
            sergeant.unit,
            now=now,
            effective_at=now + timedelta(minutes=30),
            expires_at=now + timedelta(hours=1),
        )
        for _ in range(5)
    ]
    later = now + timedelta(minutes=45)
    barrier = threading.Barrier(2)
    results = []

    def run_sweep(moment):
        barrier.wait()
        try:
            results.append(clock.sweep(moment))
        finally:
            connection.close()

    threads = [threading.Thread(target=run_sweep, args=(later,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end_threads = [
        threading.Thread(target=run_sweep, args=(now + timedelta(hours=2),)) for _ in range(2)
    ]
    barrier.reset()
    for thread in end_threads:
        thread.start()
    for thread in end_threads:
        thread.join()

    assert sum(r["took_effect"] for r in results) == 5
    assert sum(r["ended"] for r in results) == 10
    for bulletin in bulletins:
        bulletin.refresh_from_db()
        assert bulletin.status == Bulletin.Status.EXPIRED
    assert AuditEvent.objects.filter(action="bulletin.take_effect").count() == 5
    assert AuditEvent.objects.filter(action="bulletin.expire").count() == 10
    assert NotificationEvent.objects.filter(event="ended").count() == 10
    assert NotificationEvent.objects.filter(event="published").count() == 10


@pytest.mark.django_db(transaction=True)
def test_extension_committed_while_a_sweep_runs_wins(sergeant):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now - timedelta(hours=2), expires_at=now + timedelta(minutes=5)
    )
    sweep_at = now + timedelta(minutes=10)
    outcome = {}

    def run_sweep():
        try:
            outcome.update(clock.sweep(sweep_at))
        finally:
            connection.close()

    with transaction.atomic():
        authoring.amend_bulletin(
            bulletin,
            by=sergeant,
            now=now,
            reason="Extended",
            is_material=False,
            expires_at=now + timedelta(hours=12),
        )
        sweeper = threading.Thread(target=run_sweep)
        sweeper.start()
        time.sleep(0.5)
        sweep_was_waiting = sweeper.is_alive()
    sweeper.join()

    bulletin.refresh_from_db()
    assert sweep_was_waiting
    assert outcome["ended"] == 0
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert AuditEvent.objects.filter(action="bulletin.expire").count() == 0


def test_county_36_hour_pairing_order_ends_on_time(client, admin, manhattan, officer):
    now = timezone.now()
    order = published_bulletin(
        admin,
        manhattan,
        now=now,
        title="Patrols paired for 36 hours",
        expires_at=now + timedelta(hours=36),
    )

    clock.sweep(now + timedelta(hours=36))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: now + timedelta(hours=36, minutes=1))
        client.force_login(officer)
        feed = client.get(reverse("bulletins:feed"))
        history = client.get(reverse("bulletins:history"))
        page = client.get(reverse("bulletins:detail", args=[order.pk]))

    assert order.pk not in [b.pk for b in feed.context["bulletins"]]
    assert order.pk in [b.pk for b in history.context["bulletins"]]
    assert "Ended" in page.content.decode()
    assert "Lifted" not in page.content.decode()


def test_pairing_order_stays_until_lifted_then_shows_who_and_why(client, admin, agency, officer):
    now = timezone.now()
    order = published_bulletin(
        admin,
        agency,
        now=now,
        title="All officers paired - no solo posts until further notice",
    )
    client.force_login(officer)
    for day in range(1, 12):
        clock.sweep(now + timedelta(days=day))
    assert Bulletin.objects.in_force(now + timedelta(days=11)).filter(pk=order.pk).exists()

    authoring.lift_bulletin(
        order, by=admin, now=now + timedelta(days=12), reason="Threat assessment closed"
    )
    page = client.get(reverse("bulletins:detail", args=[order.pk])).content.decode()

    assert "Lifted" in page
    assert "Threat assessment closed" in page
    assert admin.name in page


def test_supervisor_schedules_a_lift_through_the_page(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(sergeant)
    at = timezone.localtime() + timedelta(hours=6)

    response = client.post(
        reverse("bulletins:lift", args=[bulletin.pk]),
        {"when": "later", "lift_at": at.strftime("%Y-%m-%dT%H:%M"), "reason": "Tour change"},
    )

    assert response.status_code == HTTPStatus.FOUND
    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert bulletin.expires_at == at.replace(second=0, microsecond=0)
    assert bulletin.lifted_by == sergeant
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    assert "To be lifted" in page


def test_scheduled_lift_in_the_past_is_a_field_error(client, sergeant):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(sergeant)
    past = timezone.localtime() - timedelta(hours=1)

    response = client.post(
        reverse("bulletins:lift", args=[bulletin.pk]),
        {"when": "later", "lift_at": past.strftime("%Y-%m-%dT%H:%M"), "reason": "x"},
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "must be in the future" in response.content.decode()
    bulletin.refresh_from_db()
    assert bulletin.expires_at is None
    assert bulletin.lifted_by is None


def test_reaffirm_through_the_page_is_shown_on_the_bulletin(client, sergeant, officer):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, review_interval=timedelta(hours=1)
    )
    clock.sweep(now + timedelta(hours=1))
    client.force_login(sergeant)
    feed = client.get(reverse("bulletins:feed")).content.decode()

    response = client.post(reverse("bulletins:reaffirm", args=[bulletin.pk]))
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()

    assert "Needs your review" in feed
    assert response.status_code == HTTPStatus.FOUND
    assert f"last re-affirmed 0\xa0minutes ago by {sergeant.name}" in page


def test_officer_cannot_reaffirm(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)

    response = client.post(reverse("bulletins:reaffirm", args=[bulletin.pk]))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert events(bulletin, "bulletin.reaffirm") == 0

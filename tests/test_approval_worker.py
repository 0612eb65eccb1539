"""Emergency publication reviewed after the fact, with a real Celery worker (a subprocess) on
Redis and PostgreSQL and a moved clock: reviewed in time, nothing escalates; not reviewed, the
next unit up is told, by e-mail, on the Immediate cadence."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bulletins.models import Bulletin, Notification, NotificationEvent
from bulletins.services import approval
from tests.factories import draft_bulletin, published_bulletin
from tests.test_worker import celery_processes, wait_for  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]


def sweep_at(moment):
    from bulletins.tasks import sweep_task

    sweep_task.delay(now=moment.isoformat())


def swept_past(sergeant, precinct17, moment):
    """Sweep at `moment` and wait until the worker has (a marker order ends just before)."""
    marker = published_bulletin(
        sergeant, precinct17, title=f"Marker {moment:%H%M%S%f}",
        expires_at=moment - timedelta(seconds=1),
    )  # fmt: skip
    sweep_at(moment)
    wait_for(lambda: Bulletin.objects.get(pk=marker.pk).status == Bulletin.Status.EXPIRED,
             message="the sweep at the moved time")  # fmt: skip


def late(bulletin):
    return NotificationEvent.objects.filter(
        bulletin=bulletin, event=NotificationEvent.Event.EMERGENCY_LATE
    )


def test_an_emergency_reviewed_in_time_never_escalates(
    sergeant,
    commander,
    admin,
    manhattan,
    precinct17,
    celery_processes,  # noqa: F811
):
    t0 = timezone.now()
    bulletin = approval.publish_in_emergency(
        draft_bulletin(sergeant, manhattan), by=sergeant, now=t0, reason="Shots fired."
    )
    approval.confirm_emergency(bulletin, by=commander, now=t0 + timedelta(minutes=40))
    celery_processes.start_worker()

    swept_past(sergeant, precinct17, bulletin.emergency_review_due_at + timedelta(minutes=1))
    swept_past(sergeant, precinct17, t0 + timedelta(hours=3))

    assert not late(bulletin).exists()


def test_an_emergency_not_reviewed_escalates_by_email(
    sergeant,
    commander,
    admin,
    manhattan,
    precinct17,
    celery_processes,  # noqa: F811
):
    t0 = timezone.now()
    bulletin = approval.publish_in_emergency(
        draft_bulletin(sergeant, manhattan), by=sergeant, now=t0, reason="Shots fired."
    )
    due = bulletin.emergency_review_due_at
    celery_processes.start_worker()

    swept_past(sergeant, precinct17, due - timedelta(minutes=1))
    assert not late(bulletin).exists()
    swept_past(sergeant, precinct17, due + timedelta(minutes=1))
    swept_past(sergeant, precinct17, due + timedelta(minutes=2))

    assert late(bulletin).count() == 1  # Manhattan South's approvers: the agency is next
    sent = Notification.objects.filter(event__in=late(bulletin))
    wait_for(lambda: sent.filter(sent_at__isnull=False).exists(), message="the e-mail")
    assert set(sent.values_list("user__email", flat=True)) == {admin.email}

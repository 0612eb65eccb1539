"""'I cannot comply' end to end with a real Celery worker on Redis and PostgreSQL: the
supervisors' email leaves right after commit, and the chase up the chain follows the clock."""

import email
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from bulletins.models import (
    Bulletin,
    CannotComplyReason,
    Notification,
    NotificationEvent,
    ResponseEscalation,
)
from bulletins.services import responses
from portal.models import User
from tests.factories import UserFactory, published_bulletin
from tests.test_worker import CeleryProcesses, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

DELAY = timedelta(minutes=settings.REMINDER_DELAY_MINUTES[1])
SEPARATOR = "-" * 79


@pytest.fixture
def mail_dir(tmp_path):
    return tmp_path / "mail"


@pytest.fixture
def worker(tmp_path, mail_dir):
    """A worker whose mail backend writes every message it is handed to `mail_dir`."""
    from portal.celery import app as celery_app

    celery_app.control.purge()
    processes = CeleryProcesses(tmp_path)
    processes.env["EMAIL_URL"] = f"filemail:///{mail_dir}"
    processes.start_worker()
    yield processes
    processes.stop()


def sent_mail(mail_dir):
    """[(to, subject, body)] of every message the worker handed to its mail backend."""
    found = []
    for path in sorted(mail_dir.glob("*")) if mail_dir.exists() else []:
        for chunk in path.read_text().split(SEPARATOR):
            if chunk.strip():
                message = email.message_from_string(chunk.strip())
                body = message.get_payload(0) if message.is_multipart() else message
                text = body.get_payload(decode=True).decode()
                found.append((message["To"], " ".join(message["Subject"].split()), text))
    return found


def mail_to(mail_dir, person, starts):
    return [m for m in sent_mail(mail_dir) if m[0] == person.email and m[1].startswith(starts)]


@pytest.fixture
def inspector(manhattan):
    return UserFactory(
        email="inspector@agency.test", name="Insp. Lee", unit=manhattan, role=User.Role.SUPERVISOR
    )


def test_cannot_comply_reaches_the_supervisor_within_seconds_and_climbs_until_resolved(
    agency, admin, sergeant, inspector, officer, precinct17, mail_dir, worker
):
    from bulletins.tasks import sweep_task

    reason = CannotComplyReason.objects.create(agency=agency, label="No partner available")
    order = published_bulletin(sergeant, precinct17, priority=1)
    # The worker is idle before the answer: only the answer's own task can send its email.
    wait_for(lambda: not NotificationEvent.objects.filter(fanned_out_at__isnull=True).exists()
             and not Notification.objects.filter(sent_at__isnull=True).exists(),
             message="the publication's emails")  # fmt: skip
    t0 = timezone.now()

    response = responses.cannot_comply(
        order, user=officer, reason=reason, detail="Partner out sick", now=t0
    )
    started = time.monotonic()
    wait_for(lambda: mail_to(mail_dir, sergeant, "Cannot comply: Maria Lopez"), timeout=15,
             message="the sergeant's email")  # fmt: skip
    seconds = time.monotonic() - started

    def sweep_at(moment):
        sweep_task.delay(now=moment.isoformat())

    def steps():
        rows = ResponseEscalation.objects.filter(response=response).order_by("step")
        return list(rows.values_list("step", "unit__name"))

    sweep_at(t0 + DELAY - timedelta(seconds=1))
    sweep_at(t0 + DELAY)
    wait_for(lambda: mail_to(mail_dir, inspector, "Not resolved (step 1)"),
             message="the first escalation")  # fmt: skip
    first = steps()
    responses.resolve(response, by=sergeant, resolution="Paired with P.O. Diaz at 08:40",
                      now=t0 + DELAY + timedelta(minutes=1))  # fmt: skip
    wait_for(lambda: mail_to(mail_dir, officer, "Resolved - your"), message="the officer's email")
    marker = published_bulletin(
        sergeant, precinct17, title="Marker", expires_at=t0 + 3 * DELAY - timedelta(minutes=1)
    )
    sweep_at(t0 + 2 * DELAY)
    sweep_at(t0 + 3 * DELAY)
    wait_for(lambda: Bulletin.objects.get(pk=marker.pk).status == Bulletin.Status.EXPIRED,
             message="the later sweeps to run")  # fmt: skip

    assert seconds < 10, worker.logs()[-2000:]
    (to_sergeant,) = mail_to(mail_dir, sergeant, "Cannot comply")
    assert "No partner available" in to_sergeant[1]
    assert "Partner out sick" in to_sergeant[2]
    assert first == [(1, "Manhattan South")]
    assert steps() == first  # resolved: nothing more up the chain
    assert len(mail_to(mail_dir, inspector, "Not resolved")) == 1
    assert not mail_to(mail_dir, admin, "Not resolved")
    (told,) = mail_to(mail_dir, officer, "Resolved - your")
    assert "Paired with P.O. Diaz at 08:40" in told[2]

"""Celery tasks: a few lines each; the work lives in services."""

import logging
import smtplib
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from bulletins import coverage, notifications
from bulletins.models import NotificationEvent
from bulletins.services import authoring, clock, push

log = logging.getLogger(__name__)


@shared_task(time_limit=120, soft_time_limit=100)
def sweep_task(now=None):
    """Record every transition due now (beat runs this every SWEEP_INTERVAL_SECONDS).

    `now` (ISO 8601) replays a sweep at a given time: catching up by hand, and tests."""
    done = clock.sweep(datetime.fromisoformat(now) if now else timezone.now())
    if any(done.values()):
        log.info("sweep recorded %s", done)
    return done


@shared_task(time_limit=60, soft_time_limit=50)
def refresh_coverage_task():
    """Coverage figures someone is watching, computed again when their counts have moved (beat
    runs this every COVERAGE_REFRESH_SECONDS)."""
    return coverage.refresh_watched()


@shared_task(time_limit=300, soft_time_limit=280)
def write_recipients_task(bulletin_id):
    """Right after a publication to a large audience: one recipient row per person."""
    return authoring.write_recipients(bulletin_id, now=timezone.now())


@shared_task(time_limit=300, soft_time_limit=280)
def deliver_event_task(event_id):
    """Fan one outbox event out to its people, then send."""
    outbox = NotificationEvent.objects.select_related("bulletin").get(pk=event_id)
    created = push.fan_out(outbox)  # the emails' rows and the pushes', in one transaction
    send_notifications_task.delay()
    return created


@shared_task(
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
    time_limit=600,
    soft_time_limit=580,
)
def send_notifications_task(batch_size=notifications.SEND_BATCH_SIZE):
    """Send queued notifications in batches until none are left. Beat also runs this as a
    safety net, fanning out any event whose delivery task was lost."""
    for outbox in notifications.pending_events().select_related("bulletin"):
        push.fan_out(outbox)
    total = 0
    while sent := notifications.send_pending(batch_size=batch_size):
        total += sent
    return total


@shared_task(time_limit=900, soft_time_limit=880)
def send_pushes_task(event_id=None):
    """Send the pushes of outbox event `event_id` in batches until none are left (queued after
    commit by `push.queue_pushes`, once per PUSH_SENDERS). Beat runs it without an event as a
    safety net: leases of dead workers expire, stranded retries and lost dispatches are sent."""
    if event_id is None:
        now = timezone.now()
        push.expire_leases(now)
        _retry_later(push.send_pending(delivery_ids=push.stranded_retries(now)))
    return _retry_later(push.send_pending(event_id))


@shared_task(time_limit=900, soft_time_limit=880)
def retry_pushes_task(delivery_ids):
    """Try again the pushes a push service answered 429 / 5xx to, or could not be reached for."""
    return _retry_later(push.send_pending(delivery_ids=delivery_ids))


def _retry_later(done):
    """Queue one retry task per number of attempts made, with backoff as email's."""
    by_attempts = {}
    for delivery_id, attempts in done.retry.items():
        by_attempts.setdefault(attempts, []).append(delivery_id)
    for attempts, ids in by_attempts.items():
        retry_pushes_task.apply_async((ids,), countdown=push.retry_delay(attempts))
    return {"sent": done.sent, "gone": done.gone, "failed": done.failed, "retry": len(done.retry)}

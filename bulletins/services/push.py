"""Web Push to the lock screen, riding the email outbox (`bulletins.notifications`).

Entry points (stable: `bench/push.py` and `bulletins.tasks` call them):

- `fan_out(outbox, *, now=None)` - `notifications.fan_out` (the email rows) and `queue_pushes`
  in one transaction: what the outbox tasks call, so an event fanned out has its pushes queued.
- `queue_pushes(event, *, now=None) -> int` - `event` is a NotificationEvent or its id. One
  PushDelivery row per device of each person the event is pushed to, in one INSERT ... SELECT
  (ON CONFLICT DO NOTHING on the unique key: at most once per device and event); it queues
  `send_pushes_task` after commit. No query at all while push is off (`is_enabled`), and the
  event kinds that are not pushed cost nothing either.
- `send_batch(event_id=None, *, delivery_ids=None, batch_size=None, now=None, session=None)
  -> Batch` - claims up to `batch_size` (PUSH_BATCH_SIZE) rows and commits the claim before
  anything is sent (SKIP LOCKED on PostgreSQL: two workers never claim one row), then encrypts
  (RFC 8291, aes128gcm) and POSTs each over one keep-alive HTTP session, and records the
  outcomes. Unclaimed rows of `event_id` (any event when None), or, with `delivery_ids`, the
  rows among them waiting for a retry.
- `send_pending(event_id=None, **kwargs) -> Batch` - `send_batch` until nothing is left; the
  totals, and the rows to retry.
- `expire_leases(now)` - rows claimed more than PUSH_LEASE_SECONDS ago by a worker that never
  finished them get outcome "unknown" and are never sent again: a device may miss a push when a
  worker dies mid-batch, but is never alerted twice.

Outcomes: 201 (or any 2xx) "sent"; 404/410 delete the subscription (and its rows); 429, 5xx and
network errors "retry" (the task retries them with backoff, like email, until PUSH_MAX_ATTEMPTS,
then "failed"); other answers "rejected"; an endpoint no longer allowed "refused" (not sent).
"""

import base64
import functools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import http_ece
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.urls import reverse
from django.utils import timezone
from py_vapid import Vapid02

from bulletins import notifications
from bulletins.models import Bulletin, NotificationEvent, PushDelivery, Recipient
from portal import database
from portal.celery import queue_after_commit
from portal.models import PushSubscription, User

log = logging.getLogger(__name__)

Event = NotificationEvent.Event
# Pushed whatever the kind: to the chain of command, about one person's answer or silence.
TO_SUPERVISORS = {Event.CANNOT_COMPLY, Event.CANNOT_COMPLY_ESCALATED, Event.ESCALATION}
PUSHED = {Event.PUBLISHED, Event.AMENDED, Event.REMINDER} | TO_SUPERVISORS
RESTRICTED = "Restricted bulletin - open the portal"
JWT_LIFETIME = 12 * 3600  # RFC 8292: at most 24 h
TIMEOUT = (5, 15)  # connect, read (seconds)


def is_enabled():
    return bool(settings.VAPID_PUBLIC_KEY and settings.VAPID_PRIVATE_KEY)


def is_pushed(outbox):
    """A new "Officer safety - immediate" bulletin; a material amendment; a reminder; for
    supervisors each "cannot comply" and each escalation."""
    if outbox.event == Event.PUBLISHED:
        return outbox.bulletin.priority == Bulletin.Priority.IMMEDIATE
    return outbox.event in PUSHED


def addressees(outbox):
    """Who is pushed to for one event (a queryset of users), whatever their email preference."""
    bulletin = outbox.bulletin
    if outbox.event == Event.PUBLISHED:
        told = Recipient.objects.filter(bulletin=bulletin).values("user_id")
        return User.objects.filter(pk__in=told, is_active=True).order_by()
    if outbox.event == Event.AMENDED:  # those who had acknowledged a version before this one
        rows = Recipient.objects.filter(bulletin=bulletin, acknowledged_version__isnull=False)
        return User.objects.filter(pk__in=rows.values("user_id"), is_active=True).order_by()
    return notifications.addressees(outbox)


@transaction.atomic
def fan_out(outbox, *, now=None):
    """The email rows of outbox event `outbox`, then its push rows (not while the email fan-out
    waits for the recipient rows). Returns what `notifications.fan_out` returns."""
    created = notifications.fan_out(outbox, now=now)
    if created is not None:
        queue_pushes(outbox, now=now)
    return created


def queue_pushes(event, *, now=None):
    """One PushDelivery per device of each addressee, in one statement. Returns how many rows
    were written. Idempotent."""
    if not is_enabled():
        return 0
    outbox = event
    if not isinstance(event, NotificationEvent):
        outbox = NotificationEvent.objects.select_related("bulletin").get(pk=event)
    if not is_pushed(outbox):
        return 0
    created_at = PushDelivery._meta.get_field("created_at")
    rows = (
        PushSubscription.objects.filter(user__in=addressees(outbox).values("pk"))
        .order_by()
        .annotate(
            d_event=Value(outbox.pk),
            d_subscription=F("id"),
            d_created=Value(now or timezone.now(), output_field=created_at),
            d_attempts=Value(0),
            d_outcome=Value(""),
        )
        .values_list("d_event", "d_subscription", "d_created", "d_attempts", "d_outcome")
    )
    created = database.insert_from(
        PushDelivery,
        ["event_id", "subscription_id", "created_at", "attempts", "outcome"],
        rows,
        on_conflict="(subscription_id, event_id)",
    )
    for _ in range(min(settings.PUSH_SENDERS, -(-created // settings.PUSH_BATCH_SIZE))):
        queue_after_commit("bulletins.tasks.send_pushes_task", outbox.pk)
    return created


def payload(outbox):
    """{title, body, url, tag} for one event: the same for every device. Never restricted text:
    an Intelligence bulletin's title stays on the server."""
    bulletin = outbox.bulletin
    restricted = bulletin.kind == Bulletin.Kind.INTELLIGENCE
    subject = RESTRICTED if restricted else bulletin.title
    if outbox.event == Event.PUBLISHED:
        title = bulletin.get_priority_display()
        if restricted:
            title, subject = "New restricted bulletin - open the portal", ""
    elif outbox.event in (Event.CANNOT_COMPLY, Event.CANNOT_COMPLY_ESCALATED):
        title = (
            "Cannot comply - not resolved"
            if outbox.event != Event.CANNOT_COMPLY
            else ("An officer cannot comply")
        )
    elif outbox.event == Event.ESCALATION:
        title = "Not acknowledged - see who"
    elif outbox.event == Event.REMINDER:
        title = "Reminder: acknowledge"
    else:
        title = outbox.get_event_display()
    if bulletin.is_exercise:
        title = f"{notifications.EXERCISE_PREFIX}{title}"
    return {
        "title": title[:120],
        "body": subject[:200],
        "url": reverse("bulletins:detail", args=[bulletin.pk]),
        "tag": f"bulletin-{bulletin.pk}",
    }


def _b64decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt(data, *, p256dh, auth):
    """`data` encrypted for one subscription (RFC 8291 aes128gcm, a fresh key per message)."""
    return http_ece.encrypt(
        data,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=_b64decode(p256dh),
        auth_secret=_b64decode(auth),
        version="aes128gcm",
    )


@functools.cache
def _vapid(private_key):
    return Vapid02.from_string(private_key)


_signed = {}  # (private key, origin) -> (Authorization header, expiry): one signature per origin


def vapid_header(origin, *, at=None):
    """The VAPID Authorization header for a push service's origin, signed once per origin for
    JWT_LIFETIME (and signed again an hour before it ends)."""
    at = at or time.time()
    key = (settings.VAPID_PRIVATE_KEY, origin)
    header, expires = _signed.get(key, ("", 0))
    if expires - at < 3600:
        expires = int(at) + JWT_LIFETIME
        claims = {"aud": origin, "sub": settings.VAPID_SUBJECT, "exp": expires}
        header = _vapid(settings.VAPID_PRIVATE_KEY).sign(claims)["Authorization"]
        _signed[key] = (header, expires)
    return header


def origin_of(endpoint):
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def endpoint_error(endpoint):
    """Why `endpoint` may not be pushed to ("" when it may): HTTPS to a known push service
    (PUSH_SERVICE_HOSTS; an entry starting with a dot allows its subdomains). Plain HTTP only
    to 127.0.0.1 or localhost, and only when listed (the tests' local push service). The
    portal POSTs to this URL: anything else would let a person aim it inside the network."""
    try:
        parts = urlsplit(endpoint)
        host, _port = parts.hostname or "", parts.port
    except ValueError:
        return "The device's push address is not a valid web address."
    if parts.username or parts.password or not host:
        return "The device's push address is not a valid web address."
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOCAL_HOSTS):
        return "The device's push address must use https."
    allowed = any(
        host == entry or (entry.startswith(".") and host.endswith(entry))
        for entry in settings.PUSH_SERVICE_HOSTS
    )
    if not allowed:
        return "This browser's push service is not one the portal sends to."
    return ""


LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Batch:
    claimed: int = 0
    sent: int = 0
    gone: int = 0
    failed: int = 0
    retry: dict = field(default_factory=dict)  # delivery id -> attempts made

    def add(self, other):
        self.claimed += other.claimed
        self.sent += other.sent
        self.gone += other.gone
        self.failed += other.failed
        self.retry.update(other.retry)


def _claim(*, event_id, delivery_ids, batch_size, now):
    """Claim rows in one committed statement: (delivery id, subscription id, event id,
    attempts). PostgreSQL skips rows another worker holds; SQLite serialises writers."""
    table = PushDelivery._meta.db_table
    if delivery_ids is not None:
        ids = list(delivery_ids)[:batch_size] or [0]
        where = f"id IN ({', '.join(['%s'] * len(ids))}) AND sent_at IS NULL AND outcome = 'retry'"
        params = ids
    elif event_id is not None:
        where, params = "event_id = %s AND claimed_at IS NULL", [event_id]
    else:
        where, params = "claimed_at IS NULL", []
    lock = " FOR UPDATE SKIP LOCKED" if database.is_postgresql() else ""
    sql = (
        f"UPDATE {table} SET claimed_at = %s, attempts = attempts + 1, outcome = '' "  # noqa: S608
        f"WHERE id IN (SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT %s{lock}) "
        "RETURNING id, subscription_id, event_id, attempts"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        at = PushDelivery._meta.get_field("claimed_at").get_db_prep_value(now, connection)
        cursor.execute(sql, [at, *params, batch_size])
        return cursor.fetchall()


def send_batch(event_id=None, *, delivery_ids=None, batch_size=None, now=None, session=None):
    """Claim one batch, send it, record what the push services answered."""
    batch_size = batch_size or settings.PUSH_BATCH_SIZE
    rows = _claim(
        event_id=event_id,
        delivery_ids=delivery_ids,
        batch_size=batch_size,
        now=now or timezone.now(),
    )
    result = Batch(claimed=len(rows))
    if not rows:
        return result
    subscriptions = PushSubscription.objects.in_bulk({row[1] for row in rows})
    events = NotificationEvent.objects.select_related("bulletin").in_bulk({r[2] for r in rows})
    bodies = {pk: json.dumps(payload(outbox)).encode() for pk, outbox in events.items()}
    urgency = {
        pk: "high" if outbox.bulletin.priority == Bulletin.Priority.IMMEDIATE else "normal"
        for pk, outbox in events.items()
    }
    answers = {}  # delivery id -> (status, outcome)
    down = set()  # origins that failed at the network level in this batch
    own_session = session is None
    session = session or requests.Session()
    try:
        for delivery_id, subscription_id, event_pk, _attempts in rows:
            device = subscriptions.get(subscription_id)
            if device is None:
                continue  # removed meanwhile: its row went with it
            origin = origin_of(device.endpoint)
            if endpoint_error(device.endpoint):
                answers[delivery_id] = (None, "refused")
            elif origin in down:
                answers[delivery_id] = (None, "retry")
            else:
                status = _post(session, device, bodies[event_pk], urgency[event_pk], origin)
                if status is None:
                    down.add(origin)
                answers[delivery_id] = (status, _outcome(status))
    finally:
        if own_session:
            session.close()
    _record(rows, subscriptions, answers, result, now=now)
    return result


def _post(session, device, body, urgency, origin):
    """POST one encrypted message; the HTTP status, or None on a network error."""
    headers = {
        "Authorization": vapid_header(origin),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(settings.PUSH_TTL_SECONDS),
        "Urgency": urgency,
    }
    data = encrypt(body, p256dh=device.p256dh, auth=device.auth)
    try:
        response = session.post(
            device.endpoint, data=data, headers=headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as error:
        log.warning("push to %s failed: %s", origin, type(error).__name__)
        return None
    response.close()
    return response.status_code


def _outcome(status):
    if status is None or status == 429 or status >= 500:
        return "retry"
    if 200 <= status < 300:
        return "sent"
    if status in (404, 410):
        return "gone"
    return "rejected"


def _record(rows, subscriptions, answers, result, *, now):
    now = now or timezone.now()
    attempts = {row[0]: row[3] for row in rows}
    groups = {}
    gone = set()
    for delivery_id, subscription_id, _event, _attempts in rows:
        if delivery_id not in answers:
            continue
        status, outcome = answers[delivery_id]
        if outcome == "gone":
            gone.add(subscription_id)
            continue
        if outcome == "retry" and attempts[delivery_id] >= settings.PUSH_MAX_ATTEMPTS:
            outcome = "failed"
        groups.setdefault((status, outcome), []).append(delivery_id)
    with transaction.atomic():
        for (status, outcome), ids in groups.items():
            fields = {"status": status, "outcome": outcome}
            if outcome == "sent":
                fields["sent_at"] = now
                result.sent += len(ids)
                PushSubscription.objects.filter(
                    pk__in={row[1] for row in rows if row[0] in set(ids)}
                ).update(last_pushed_at=now)
            elif outcome == "retry":
                result.retry.update({pk: attempts[pk] for pk in ids})
            else:
                result.failed += len(ids)
            PushDelivery.objects.filter(pk__in=ids).update(**fields)
        if gone:
            for device in (subscriptions[pk] for pk in gone):
                log.info("push subscription %s of user %s expired", device.pk, device.user_id)
            PushSubscription.objects.filter(pk__in=gone).delete()  # its rows go with it
            result.gone += len(gone)


def send_pending(event_id=None, **kwargs):
    """`send_batch` until no row is left to claim; the totals (with the rows to retry)."""
    total = Batch()
    session = kwargs.pop("session", None) or requests.Session()
    ids = kwargs.pop("delivery_ids", None)
    size = kwargs.get("batch_size") or settings.PUSH_BATCH_SIZE
    try:
        if ids is not None:  # each row once: a retry answered 5xx again waits for its own task
            for start in range(0, len(ids), size):
                total.add(send_batch(delivery_ids=ids[start : start + size], session=session,
                                     **kwargs))  # fmt: skip
            return total
        while (batch := send_batch(event_id, session=session, **kwargs)).claimed:
            total.add(batch)
    finally:
        session.close()
    return total


def retry_delay(attempts):
    """Seconds before the next try, as email's retries: exponential from
    PUSH_RETRY_BACKOFF_SECONDS, at most 600, with full jitter."""
    ceiling = min(600, settings.PUSH_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0))
    return ceiling * (0.5 + int.from_bytes(os.urandom(2)) / 131070)


def expire_leases(now):
    """Rows claimed by a worker that never finished them: outcome "unknown", never sent again."""
    lease = now - timedelta(seconds=settings.PUSH_LEASE_SECONDS)
    return PushDelivery.objects.filter(
        claimed_at__lt=lease, sent_at__isnull=True, outcome=""
    ).update(outcome="unknown")


def stranded_retries(now):
    """Rows waiting for a retry whose retry task was lost (past the longest backoff)."""
    late = now - timedelta(seconds=600 + settings.PUSH_LEASE_SECONDS)
    return list(
        PushDelivery.objects.filter(outcome="retry", claimed_at__lt=late).values_list(
            "id", flat=True
        )[:10000]
    )

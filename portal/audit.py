"""Writing and checking audit events. Call `record()` inside the transaction of the change it
describes.

The events form a hash chain in id order: each row's `hash` covers its content and the previous
row's hash. Writers serialise on a transaction-scoped advisory lock (PostgreSQL), so two
concurrent transactions can never chain onto the same row; SQLite serialises writers anyway
(`transaction_mode = IMMEDIATE`). On PostgreSQL a trigger refuses UPDATE and DELETE (migration
0002); on SQLite, the embedded default, nothing enforces it: the application simply never
updates or deletes an event.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from portal.logs import current_request_id
from portal.models import AuditEvent

CHAIN_LOCK_KEY = 7_261_617_564  # any constant: the advisory lock that orders audit writers
HASHED_FIELDS = (
    "at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_version",
    "outcome", "ip", "user_agent", "request_id", "detail", "agency_id", "prev_hash",
)  # fmt: skip


def client_ip(request):
    return request.META.get("REMOTE_ADDR") or None


def to_utc_millisecond(moment):
    moment = moment.astimezone(dt.UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def content_hash(event):
    content = {name: getattr(event, name) for name in HASHED_FIELDS}
    content["at"] = to_utc_millisecond(event.at).isoformat(timespec="milliseconds")
    canonical = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    action, *, by=None, obj=None, version=None, request=None, outcome="success", now=None, **detail
):
    event = AuditEvent(
        at=to_utc_millisecond(now or timezone.now()),
        actor=by if by is not None and by.is_authenticated else None,
        actor_label=getattr(by, "email", "") or "",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_version=version,
        outcome=outcome,
        detail=detail,
        agency_id=getattr(obj, "agency_id", None) or getattr(by, "agency_id", None),
        request_id=current_request_id(),
    )
    if request is not None:
        ip = client_ip(request)
        event.ip = AuditEvent._meta.get_field("ip").get_prep_value(ip) if ip else None
        event.user_agent = request.headers.get("user-agent", "")[:400]
        event.request_id = getattr(request, "request_id", "") or event.request_id
    if connection.in_atomic_block:
        _append(event)  # the caller's transaction holds the chain lock until it commits
    else:
        with transaction.atomic():
            _append(event)
    return event


def _append(event):
    """Two queries more than a plain INSERT: the chain lock and the last hash."""
    event.prev_hash = _last_hash()
    event.hash = content_hash(event)
    event.save()


def _last_hash():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    return last or ""


@dataclass(frozen=True)
class BrokenLink:
    event_id: int
    reason: str


def first_broken_link():
    """(BrokenLink or None, how many events were checked), walking the chain in id order."""
    previous, checked = "", 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != previous:
            return BrokenLink(event.pk, "does not follow the event before it"), checked
        if event.hash != content_hash(event):
            return BrokenLink(event.pk, "its content no longer matches its hash"), checked
        previous, checked = event.hash, checked + 1
    return None, checked


def visible_events(user):
    """The audit events `user` may read: their agency's, or all of them for a superuser."""
    if not user.is_active:
        return AuditEvent.objects.none()
    if user.is_superuser:
        return AuditEvent.objects.all()
    if user.agency_id is None:
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(agency_id=user.agency_id)

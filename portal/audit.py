"""Writing, sealing and checking audit events. Call `record()` inside the transaction of the
change it describes.

`record()` inserts the event unsealed (`seq` NULL, empty `prev_hash` and `hash`): one plain INSERT
in the caller's transaction, so the event commits or rolls back with the change it describes and
no two writers ever wait for each other. `seal()`, run by `portal.tasks.seal_audit_task` every
AUDIT_SEAL_INTERVAL_SECONDS, takes the committed unsealed events in id order and chains them: each
gets the next `seq`, the previous event's hash as `prev_hash`, and a `hash` over its content and
`prev_hash`. The chain order is `seq`, not id: an event that commits late is sealed later.
Sealers serialise on a transaction-scoped advisory lock (PostgreSQL) and the unique `seq` makes a
fork impossible anyway; SQLite serialises writers (`transaction_mode = IMMEDIATE`).

On PostgreSQL a trigger refuses DELETE and every UPDATE but sealing an unsealed event (migration
0004), so an event cannot be changed in the seconds before it is sealed either. On SQLite, the
embedded default, nothing enforces it: the application simply never changes or deletes an event.
"""

import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from portal import database
from portal.logs import current_request_id
from portal.models import AuditEvent

CHAIN_LOCK_KEY = 7_261_617_564  # any constant: the advisory lock that orders sealers
SEAL_BATCH_SIZE = 5000  # events sealed per transaction
_WRITE_CHUNK = 1000  # rows per UPDATE ... FROM (VALUES ...)
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


def new_event(
    action, *, by=None, obj=None, version=None, request=None, outcome="success", now=None, **detail
):
    """The audit event of `action`, not saved yet: what `record()` writes and `insert_each()`
    writes from SQL."""
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
    return event


def record(action, **fields):
    """Write the audit event of `action` (see `new_event` for `fields`)."""
    event = new_event(action, **fields)
    event.save(force_insert=True)  # unsealed: no lock, no read of the chain
    return event


def insert_each(event, *, source, replace):
    """(sql, params): one INSERT ... SELECT that writes `event` once for each row of `source`,
    with the SQL expressions of `replace` ({column: expression over `source`}) in place of its
    own values. Every other column is the event's value as `new_event` made it, adapted for the
    database by its model field as `save()` adapts it, so the event is the one `record()` would
    write. Params are named `event_*`."""
    sql, fields = _insert_shape(source, tuple(sorted(replace.items())))
    params = {
        f"event_{field.column}": field.get_db_prep_value(
            getattr(event, field.attname), connection, prepared=True
        )
        for field in fields
    }
    return sql, params


@functools.cache
def _insert_shape(source, replace):
    """The SQL of `insert_each` and the fields whose values it binds: the same for every event
    (built once: on the acknowledgement's path, building it cost more than running it)."""
    replace = dict(replace)
    columns, values, fields = [], [], []
    for field in AuditEvent._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in replace:
            values.append(replace[field.column])
        else:
            fields.append(field)
            values.append(f"CAST(%(event_{field.column})s AS {field.cast_db_type(connection)})")
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}"
    return sql, fields


def seal(limit=SEAL_BATCH_SIZE):
    """Chain up to `limit` committed unsealed events, oldest id first, in one transaction.

    Returns how many were sealed. Each event's hash is computed from the row as read back from
    the database, which is what `first_broken_link()` will read."""
    with transaction.atomic():
        database.advisory_xact_lock(CHAIN_LOCK_KEY)
        # After the lock: READ COMMITTED sees what the previous sealer committed.
        last = (
            AuditEvent.objects.filter(seq__isnull=False)
            .order_by("-seq")
            .values_list("seq", "hash")
            .first()
        )
        seq, previous = last or (0, "")
        events = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[:limit])
        for event in events:
            seq += 1
            event.seq, event.prev_hash = seq, previous
            event.hash = previous = content_hash(event)
        _write_seals(events)
    return len(events)


def seal_all(batch_size=SEAL_BATCH_SIZE):
    """Seal every event committed so far, `batch_size` per transaction; how many were sealed."""
    total = 0
    while True:
        sealed = seal(limit=batch_size)
        total += sealed
        if sealed < batch_size:
            return total


def _write_seals(events):
    """One UPDATE ... FROM a VALUES list per chunk (PostgreSQL and SQLite >= 3.33), never over
    an event sealed meanwhile."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(events), _WRITE_CHUNK):
            chunk = events[start : start + _WRITE_CHUNK]
            rows = ", ".join(["(CAST(%s AS bigint), CAST(%s AS bigint), %s, %s)"] * len(chunk))
            # Not WITH v (...) AS (VALUES ...): Python's sqlite3 counts no rows (-1) for a
            # statement that starts with WITH. Both databases name VALUES' columns column1, ...
            cursor.execute(
                f"UPDATE {table} SET seq = v.column2, prev_hash = v.column3, hash = v.column4 "
                f"FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1 AND {table}.seq IS NULL",
                [value for e in chunk for value in (e.pk, e.seq, e.prev_hash, e.hash)],
            )
            if cursor.rowcount != len(chunk):
                raise RuntimeError("audit events changed while they were being sealed")


def unsealed_count():
    """How many committed events are waiting for the next `seal()`."""
    return AuditEvent.objects.filter(seq__isnull=True).count()


@dataclass(frozen=True)
class BrokenLink:
    event_id: int
    reason: str


def first_broken_link():
    """(BrokenLink or None, how many events were checked), walking the sealed events in `seq`
    order. A gap in `seq` (a removed row) breaks the link of the event after it."""
    previous, checked = "", 0
    sealed = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    for event in sealed.iterator(chunk_size=2000):
        if event.seq != checked + 1 or event.prev_hash != previous:
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

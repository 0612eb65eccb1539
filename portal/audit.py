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

Each `hash` is an HMAC-SHA256, keyed by AUDIT_CHAIN_KEY, over the event's content, its `seq` and
`prev_hash`: the key lives outside the database, so whoever owns the table can neither rewrite an
event nor remove one and chain the rest again. What a keyed chain cannot show is its own end
cut off: every few minutes `portal.tasks.checkpoint_audit_task` seals, then appends a signed
checkpoint of the head (seq, hash, time) to a file in AUDIT_CHECKPOINT_DIR, somewhere the
database's owner does not control, and `manage.py verify_audit` compares the chain with the
latest checkpoint.

On PostgreSQL a trigger refuses DELETE, TRUNCATE and every UPDATE but sealing an unsealed event
(migrations 0004 and 0005), so an event cannot be changed in the seconds before it is sealed
either. On SQLite, the embedded default, nothing enforces it: the application simply never
changes or deletes an event.
"""

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Max
from django.utils import timezone

from portal import database
from portal.logs import current_request_id
from portal.models import AuditEvent

CHAIN_LOCK_KEY = 7_261_617_564  # any constant: the advisory lock that orders sealers
SEAL_BATCH_SIZE = 5000  # events sealed per transaction
_WRITE_CHUNK = 1000  # rows per UPDATE ... FROM (VALUES ...)
HASHED_FIELDS = (
    "at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_version",
    "outcome", "ip", "user_agent", "request_id", "detail", "agency_id", "prev_hash", "seq",
)  # fmt: skip
CHECKPOINT_FILE = "checkpoints.jsonl"

logger = logging.getLogger(__name__)


def client_ip(request):
    """The address of whoever made the request, as allauth's rate limits see it: behind
    TRUSTED_PROXY_COUNT proxies of ours, the one the outermost proxy saw (that many from the
    right of X-Forwarded-For); else the peer's. Whatever the client itself put in the header
    never counts: with 0 trusted proxies, or fewer addresses than proxies, it is ignored."""
    trusted = settings.TRUSTED_PROXY_COUNT
    header = request.headers.get("x-forwarded-for", "")
    forwarded = header.split(",") if trusted and header else []
    if forwarded and len(forwarded) >= trusted:
        address = forwarded[-trusted]
    else:
        address = request.META.get("REMOTE_ADDR", "")
    return _address(address.strip())


@functools.lru_cache(maxsize=1024)
def _address(text):
    """`text` as an address is written (IPv6 compressed), or None: parsed once per address seen
    lately, not on every audited request."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def to_utc_millisecond(moment):
    moment = moment.astimezone(dt.UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def chain_key():
    """The HMAC key of the chain and its checkpoints, from AUDIT_CHAIN_KEY (held outside the
    database); labelled, so it differs from any other key derived from the same secret."""
    return hashlib.sha256(b"portal.audit.chain\0" + settings.AUDIT_CHAIN_KEY.encode()).digest()


def _canonical(content):
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def content_hash(event, key=None):
    """The seal of a sealed `event`: HMAC-SHA256 over its content, `seq` and `prev_hash`."""
    content = {name: getattr(event, name) for name in HASHED_FIELDS}
    content["at"] = to_utc_millisecond(event.at).isoformat(timespec="milliseconds")
    return hmac.new(key or chain_key(), _canonical(content), hashlib.sha256).hexdigest()


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
    real = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    params = {
        f"event_{field.column}": field.get_db_prep_value(
            getattr(event, field.attname), real, prepared=True
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
        key = chain_key()
        for event in events:
            seq += 1
            event.seq, event.prev_hash = seq, previous
            event.hash = previous = content_hash(event, key)
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
    previous, checked, key = "", 0, chain_key()
    sealed = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    for event in sealed.iterator(chunk_size=2000):
        if event.seq != checked + 1 or event.prev_hash != previous:
            return BrokenLink(event.pk, "does not follow the event before it"), checked
        if event.hash != content_hash(event, key):
            reason = "its content no longer matches its hash (changed, or sealed without the key)"
            return BrokenLink(event.pk, reason), checked
        previous, checked = event.hash, checked + 1
    return None, checked


class CheckpointError(Exception):
    """The chain contradicts its latest checkpoint, or that checkpoint cannot be trusted."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str  # ISO 8601, UTC, to the millisecond


def checkpoint_path():
    return Path(settings.AUDIT_CHECKPOINT_DIR) / CHECKPOINT_FILE


def _checkpoint_mac(seq, hash_, at, key):
    signed = b"checkpoint\n" + _canonical({"seq": seq, "hash": hash_, "at": at})
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def latest_checkpoint():
    """The last checkpoint in AUDIT_CHECKPOINT_DIR, None if none was written there; raises
    CheckpointError if its signature is not the chain key's."""
    line = _last_line(checkpoint_path())
    if line is None:
        return None
    try:
        entry = json.loads(line)
        checkpoint = Checkpoint(int(entry["seq"]), str(entry["hash"]), str(entry["at"]))
        mac = str(entry["mac"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"The last line of {checkpoint_path()} is no checkpoint.") from error
    expected = _checkpoint_mac(checkpoint.seq, checkpoint.hash, checkpoint.at, chain_key())
    if not hmac.compare_digest(mac, expected):
        raise CheckpointError(
            f"The last checkpoint in {checkpoint_path()} is not signed with AUDIT_CHAIN_KEY: "
            "the file was altered, or the key changed."
        )
    return checkpoint


def _last_line(path, block=4096):
    """The last complete line of the file at `path`, read from its end; None if there is none.
    A line is complete with its newline: the rest of one that a crash cut short is not."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return None
    with file:
        end = file.seek(0, os.SEEK_END)
        tail = b""
        while end > 0 and tail.count(b"\n") < 2:
            start = max(0, end - block)
            file.seek(start)
            tail = file.read(end - start) + tail
            end = start
    lines = tail[: tail.rfind(b"\n") + 1].splitlines()
    return lines[-1].decode() if lines else None


def checkpoint_problem(checkpoint):
    """What is wrong with the chain as `checkpoint` saw it (a sentence), or None: the head went
    back below the checkpoint (the newest events removed), or the event at the checkpoint's
    `seq` is not the one it recorded (an event at or below it changed, removed, chained again)."""
    if checkpoint is None:
        return None
    head = AuditEvent.objects.aggregate(head=Max("seq"))["head"] or 0
    when = f"the checkpoint of {checkpoint.at} (seq {checkpoint.seq})"
    if head < checkpoint.seq:
        return f"The audit trail ends at seq {head}, behind {when}: sealed events were removed."
    stored = AuditEvent.objects.filter(seq=checkpoint.seq).values_list("pk", "hash").first()
    if stored is None:
        return f"The event at seq {checkpoint.seq} is missing, though {when} recorded it."
    if stored[1] != checkpoint.hash:
        return (
            f"Event #{stored[0]} at seq {checkpoint.seq} is not the one {when} recorded: an "
            f"event at or below seq {checkpoint.seq} was changed or removed, and the chain redone."
        )
    return None


def write_checkpoint(*, now):
    """Append a signed checkpoint of the chain's head (seq, hash, time) to AUDIT_CHECKPOINT_DIR
    and log it; returns it, or None while nothing is sealed. Refuses (CheckpointError) to sign a
    chain that contradicts the latest checkpoint: a head that went back stays reported."""
    with transaction.atomic():
        database.advisory_xact_lock(CHAIN_LOCK_KEY)  # no seal or other checkpoint meanwhile
        problem = checkpoint_problem(latest_checkpoint())
        if problem is not None:
            raise CheckpointError(problem)
        head = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq")
        head = head.values_list("seq", "hash").first()
        if head is None:
            return None
        checkpoint = Checkpoint(*head, to_utc_millisecond(now).isoformat(timespec="milliseconds"))
        mac = _checkpoint_mac(checkpoint.seq, checkpoint.hash, checkpoint.at, chain_key())
        line = json.dumps({**vars(checkpoint), "mac": mac})
        _append_line(checkpoint_path(), line)
    logger.info("Audit checkpoint: %s", line)  # a second copy, in the log stream
    return checkpoint


def _append_line(path, line):
    """Append `line` and flush it to disk; starts a new line if a crash cut the last one short."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as file:  # every write goes to the end (O_APPEND)
        size = file.seek(0, os.SEEK_END)
        cut_short = size > 0 and os.pread(file.fileno(), 1, size - 1) != b"\n"
        file.write((b"\n" if cut_short else b"") + line.encode() + b"\n")
        file.flush()
        os.fsync(file.fileno())


def rechained_over_a_broken_chain():
    """The sentence of migration 0005's record when it chained again, under the key, events
    whose old chain was already broken; None when it did not (or found the old chain intact)."""
    rechain = AuditEvent.objects.filter(action="audit.rechain", outcome="failure").first()
    if rechain is None:
        return None
    return (
        f"Event #{rechain.pk} records that the events sealed before {rechain.at:%Y-%m-%d} were "
        f"chained again under AUDIT_CHAIN_KEY although their old chain was broken at event "
        f"#{rechain.detail.get('old_chain_broken_at')}: "
        f"{rechain.detail.get('old_chain_reason')}."
    )


def visible_events(user):
    """The audit events `user` may read: their agency's, or all of them for a superuser."""
    if not user.is_active:
        return AuditEvent.objects.none()
    if user.is_superuser:
        return AuditEvent.objects.all()
    if user.agency_id is None:
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(agency_id=user.agency_id)

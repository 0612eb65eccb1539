# The audit chain against its owner (issue 18): each sealed event's hash becomes an HMAC-SHA256
# keyed by AUDIT_CHAIN_KEY (held outside the database) over its content, its `seq` and the hash
# before it, and PostgreSQL refuses TRUNCATE of the audit table.
#
# The events sealed before this migration were chained under the old rule (SHA-256, no `seq`,
# no key). They are chained again under the new one, once, so that one rule covers the whole
# trail and nothing in the database says "this part is unkeyed". First the old chain is checked
# under the old rule; an `audit.rechain` event (sealed into the new chain like any other)
# records how many events were chained again, the old head's seq and hash (to match against any
# copy of it kept elsewhere) and whether the old chain was intact. If it was not, the event's
# outcome is "failure" and `verify_audit` keeps reporting it: chaining again never launders a
# break. Stop the workers and beat while this runs (docs/decisions.md, 2026-12-04).
#
# The hash functions are copied here, not imported: a migration must not depend on code that
# changes.

import datetime as dt
import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations

TABLE = "portal_auditevent"
CHAIN_LOCK_KEY = 7_261_617_564  # portal.audit's: no sealer runs meanwhile
CHUNK = 1000
OLD_FIELDS = (
    "at", "actor_id", "actor_label", "action", "object_type", "object_id", "object_version",
    "outcome", "ip", "user_agent", "request_id", "detail", "agency_id", "prev_hash",
)  # fmt: skip
KEYED_FIELDS = (*OLD_FIELDS, "seq")

REFUSE_TRUNCATE_SQL = """
CREATE OR REPLACE FUNCTION portal_auditevent_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: the audit table cannot be truncated';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER portal_auditevent_no_truncate
    BEFORE TRUNCATE ON portal_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION portal_auditevent_no_truncate();
"""
ALLOW_TRUNCATE_SQL = """
DROP TRIGGER IF EXISTS portal_auditevent_no_truncate ON portal_auditevent;
DROP FUNCTION IF EXISTS portal_auditevent_no_truncate();
"""


def _canonical(event, fields):
    content = {name: getattr(event, name) for name in fields}
    at = event.at.astimezone(dt.UTC)
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    content["at"] = at.isoformat(timespec="milliseconds")
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def old_hash(event):
    return hashlib.sha256(_canonical(event, OLD_FIELDS)).hexdigest()


def keyed_hash(event):
    key = hashlib.sha256(b"portal.audit.chain\0" + settings.AUDIT_CHAIN_KEY.encode()).digest()
    return hmac.new(key, _canonical(event, KEYED_FIELDS), hashlib.sha256).hexdigest()


def chain_again(apps, schema_editor, *, checked_by, sealed_by):
    """Check the sealed events under `checked_by` and chain them again under `sealed_by`, in
    `seq` order. Returns (how many, the old head (seq, hash), the first break or None)."""
    AuditEvent = apps.get_model("portal", "AuditEvent")
    sealed = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    old_head, new_previous, broken, rows = (0, ""), "", None, []
    for event in sealed.iterator(chunk_size=2000):
        if broken is None and (event.seq != len(rows) + 1 or event.prev_hash != old_head[1]):
            broken = (event.pk, "does not follow the event before it")
        elif broken is None and event.hash != checked_by(event):
            broken = (event.pk, "its content no longer matches its hash")
        old_head = (event.seq, event.hash)
        event.prev_hash = new_previous
        event.hash = new_previous = sealed_by(event)
        rows.append((event.pk, event.prev_hash, event.hash))
    _write(schema_editor, rows)
    return len(rows), old_head, broken


def _write(schema_editor, rows):
    postgresql = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        if postgresql:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending events: ALTER may run
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER portal_auditevent_append_only")
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            values = ", ".join(["(CAST(%s AS bigint), %s, %s)"] * len(chunk))
            cursor.execute(
                f"UPDATE {TABLE} SET prev_hash = v.column2, hash = v.column3 "
                f"FROM (VALUES {values}) AS v WHERE {TABLE}.id = v.column1",
                [value for row in chunk for value in row],
            )
        if postgresql:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER portal_auditevent_append_only")


def chain_again_under_the_key(apps, schema_editor):
    count, old_head, broken = chain_again(
        apps, schema_editor, checked_by=old_hash, sealed_by=keyed_hash
    )
    if not count:
        return
    detail = {"events": count, "old_head_seq": old_head[0], "old_head_hash": old_head[1]}
    if broken is not None:
        detail.update(old_chain_broken_at=broken[0], old_chain_reason=broken[1])
    now = dt.datetime.now(dt.UTC)
    apps.get_model("portal", "AuditEvent").objects.create(  # unsealed: the sealer seals it
        at=now.replace(microsecond=now.microsecond // 1000 * 1000),
        action="audit.rechain",
        outcome="success" if broken is None else "failure",
        detail=detail,
    )


def chain_again_without_the_key(apps, schema_editor):
    chain_again(apps, schema_editor, checked_by=keyed_hash, sealed_by=old_hash)


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0004_audit_sealed_after_commit"),
    ]

    operations = [
        migrations.RunPython(
            chain_again_under_the_key, chain_again_without_the_key, elidable=False
        ),
        migrations.RunPython(
            _on_postgresql(REFUSE_TRUNCATE_SQL), _on_postgresql(ALLOW_TRUNCATE_SQL), elidable=False
        ),
    ]

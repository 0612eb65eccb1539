"""Evidence an agency can hand to counsel: the recipients CSV and one person's record.

An exercise's exports are marked on every row (the CSV's state reads "EXERCISE - ...", the
record carries "exercise": true): they are how a drill is reviewed, never a real order's
compliance. The exports across bulletins (the coverage overview, a person's record) leave
exercises out."""

import json

from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from bulletins.models import BulletinVersion, Receipt, Reminder
from portal.models import AuditEvent

CSV_HEADER = (
    "name", "email", "badge", "unit", "told at", "opened at", "acknowledged at",
    "acknowledged version", "statement", "content sha256", "state",
)  # fmt: skip
SIGNING_SALT = "bulletins.evidence"
EXERCISE_MARK = "EXERCISE - "


def _local(moment):
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else ""


def recipient_rows(bulletin, recipients):
    """The CSV header, then one row per recipient, read in chunks (streamed by the view)."""
    acknowledged = Receipt.objects.filter(
        bulletin=bulletin,
        user=OuterRef("user_id"),
        version__number=OuterRef("acknowledged_version"),
    )
    rows = (
        recipients.annotate(
            statement=Subquery(acknowledged.values("statement")[:1]),
            content_hash=Subquery(acknowledged.values("content_hash")[:1]),
        )
        .order_by("unit__path", "user__name", "pk")
        .values_list(
            "user__name", "user__email", "user__badge", "unit__name", "added_at",
            "first_opened_at", "acknowledged_at", "acknowledged_version", "statement",
            "content_hash",
        )
    )  # fmt: skip
    yield CSV_HEADER
    ended = bulletin.state_at(timezone.now()) in (bulletin.Status.LIFTED, bulletin.Status.EXPIRED)
    mark = EXERCISE_MARK if bulletin.is_exercise else ""
    for row in rows.iterator(chunk_size=2000):
        name, email, badge, unit, told, opened, acked, version, statement, digest = row
        state = mark + _state(bulletin, version, ended)
        yield (name, email, badge, unit or "", _local(told), _local(opened), _local(acked),
               version or "", statement or "", digest or "", state)  # fmt: skip


def _state(bulletin, version, ended):
    if version is not None and version >= bulletin.ack_version:
        return "acknowledged"
    if ended:
        return "ended before acknowledged"
    if version is not None:
        return f"acknowledged v{version} only"
    return "outstanding"


def build_record(bulletin, recipient):
    """Everything about one person and one bulletin, as plain data."""
    person = recipient.user
    versions = BulletinVersion.objects.filter(bulletin=bulletin).select_related("created_by")
    receipts = {r.version_id: r for r in Receipt.objects.filter(bulletin=bulletin, user=person)}
    reminders = Reminder.objects.filter(recipient=recipient).select_related("unit", "sent_by")
    events = AuditEvent.objects.filter(
        object_type="bulletins.bulletin", object_id=str(bulletin.pk), actor=person
    ).order_by("at", "id")
    return {
        "bulletin": {
            "id": bulletin.pk,
            "title": bulletin.title,
            "exercise": bulletin.is_exercise,
            "kind": bulletin.get_kind_display(),
            "priority": bulletin.get_priority_display(),
            "state": bulletin.state_at(timezone.now()),
            "effective_at": _local(bulletin.effective_at),
            "expires_at": _local(bulletin.expires_at) or "until further notice",
            "ended_at": _local(bulletin.ended_at),
            "lift_reason": bulletin.lift_reason,
        },
        "person": {
            "name": person.name,
            "email": person.email,
            "badge": person.badge,
            "unit_when_told": recipient.unit.name if recipient.unit else "",
            "told_at": _local(recipient.added_at),
        },
        "versions": [_version(version, receipts.get(version.pk)) for version in versions],
        "reminders": [
            {
                "at": _local(reminder.created_at),
                "version": reminder.version,
                "step": reminder.step,
                "kind": "manual reminder"
                if reminder.is_manual
                else ("reminder" if reminder.step == 0 else "escalation"),
                "escalated_to": reminder.unit.name if reminder.unit else "",
                "sent_by": reminder.sent_by.name if reminder.sent_by else "",
            }
            for reminder in reminders
        ],  # fmt: skip
        "audit": [
            {
                "at": _local(event.at),
                "action": event.action,
                "version": event.object_version,
                "ip": event.ip,
                "user_agent": event.user_agent,
            }
            for event in events
        ],  # fmt: skip
        "generated_at": _local(timezone.now()),
    }


def _version(version, receipt):
    recomputed = BulletinVersion.hash_content(
        title=version.title, instruction=version.instruction, body=version.body,
        kind=version.kind, priority=version.priority,
    )  # fmt: skip
    return {
        "number": version.number,
        "published_at": _local(version.created_at),
        "published_by": version.created_by.name,
        "material": version.is_material,
        "reason": version.reason,
        "title": version.title,
        "instruction": version.instruction,
        "body": version.body,
        "content_sha256": version.content_hash,
        "content_hash_verified": recomputed == version.content_hash,
        "opened_at": _local(receipt.opened_at) if receipt else "",
        "acknowledged_at": _local(receipt.acknowledged_at) if receipt else "",
        "statement": receipt.statement if receipt else "",
        "acknowledged_content_sha256": receipt.content_hash if receipt else "",
        "signed_in_with": receipt.auth_method if receipt else "",
        "ip": receipt.ip if receipt else None,
        "user_agent": receipt.user_agent if receipt else "",
    }


def _canonical(record):
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign(record):
    digest = salted_hmac(SIGNING_SALT, _canonical(record), algorithm="sha256").hexdigest()
    return {
        "record": record,
        "signature": {
            "algorithm": "HMAC-SHA256 over the canonical JSON of record (sorted keys)",
            "value": digest,
        },
    }


def verify(signed):
    expected = salted_hmac(SIGNING_SALT, _canonical(signed["record"]), algorithm="sha256")
    return constant_time_compare(expected.hexdigest(), signed["signature"]["value"])

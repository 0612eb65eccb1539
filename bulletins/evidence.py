"""Evidence an agency can hand to counsel: the recipients CSV and one person's record.

An exercise's exports are marked on every row (the CSV's state reads "EXERCISE - ...", the
record carries "exercise": true): they are how a drill is reviewed, never a real order's
compliance. The exports across bulletins (the coverage overview, a person's record) leave
exercises out."""

import json

from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from bulletins.models import BulletinVersion, QuizAttempt, Receipt, Reminder, Response
from bulletins.services import roll_call, roll_call_paper
from portal.models import AuditEvent

CSV_HEADER = (
    "name", "email", "badge", "unit", "told at", "opened at", "acknowledged at",
    "acknowledged version", "statement", "content sha256", "state",
    "cannot comply", "implemented at", "implemented note", "check of understanding",
    "how acknowledged", "acknowledged on device at",
)  # fmt: skip
CHUNK = 2000
SIGNING_SALT = "bulletins.evidence"
EXERCISE_MARK = "EXERCISE - "
HOW_PORTAL = "in the portal"


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
            "content_hash", "acknowledged_method", "user_id",
        )
    )  # fmt: skip
    yield CSV_HEADER
    ended = bulletin.state_at(timezone.now()) in (bulletin.Status.LIFTED, bulletin.Status.EXPIRED)
    mark = EXERCISE_MARK if bulletin.is_exercise else ""
    for chunk in _chunks(rows):
        answers = _answers_of(bulletin, [row[-1] for row in chunk])
        hows = _hows_of(bulletin, chunk)
        on_device = _device_times_of(bulletin, chunk)
        for *row, method, person in chunk:
            name, email, badge, unit, told, opened, acked, version, statement, digest = row
            state = mark + _state(bulletin, version, ended)
            yield (name, email, badge, unit or "", _local(told), _local(opened), _local(acked),
                   version or "", statement or "", digest or "", state,
                   *answers.get(person, ("", "", "", "")),
                   (hows.get(person) or _method_words(method)) if version else "",
                   _local(on_device.get(person)))  # fmt: skip


def how_label(receipt):
    """How an acknowledgement was made, in plain words: "in the portal", "briefed at roll call
    by Sgt X at 07:05, co-signed 07:09", "signed on paper, recorded by Sgt X at 08:10" (agency
    local time). Offline receipts: `offline_label` (the device's time is added there)."""
    Method = Receipt.Method
    if receipt.method == Method.PAPER:
        return roll_call_paper.paper_label(receipt)
    if receipt.method == Method.ROLL_CALL:
        return roll_call.method_label(receipt)
    if receipt.method == Method.OFFLINE:
        return offline_label(receipt)
    return HOW_PORTAL


def offline_label(receipt):
    """An offline acknowledgement, with both times: "acknowledged 09:12 on the device,
    received 09:40" (agency local time; with the day when they differ)."""
    device, received = (
        timezone.localtime(at)
        for at in (receipt.acknowledged_on_device_at, receipt.acknowledged_at)
    )
    day = "%a %d %b " if device.date() != received.date() else ""
    return (
        f"acknowledged {device:{day}%H:%M} on the device while offline, "
        f"received {received:{day}%H:%M}"
    )


def _device_times_of(bulletin, chunk):
    """{person id: the device's time} for the rows of a CSV chunk acknowledged offline: no
    query when none was."""
    offline = {row[-1]: row[7] for row in chunk if row[-2] == Receipt.Method.OFFLINE and row[7]}
    if not offline:
        return {}
    receipts = Receipt.objects.filter(
        bulletin=bulletin, user_id__in=offline, acknowledged_on_device_at__isnull=False
    ).values_list("user_id", "version__number", "acknowledged_on_device_at")
    return {person: at for person, number, at in receipts if number == offline[person]}


def _method_words(method):
    return Receipt.Method(method).label.lower() if method else HOW_PORTAL


def _hows_of(bulletin, chunk):
    """{person id: how label} for the rows of a CSV chunk acknowledged other than in the
    portal (`Recipient.acknowledged_method`): no query when every one was in the portal."""
    others = {row[-1]: row[7] for row in chunk if row[-2] and row[7]}
    if not others:
        return {}
    receipts = Receipt.objects.filter(
        bulletin=bulletin, user_id__in=others, acknowledged_at__isnull=False
    ).select_related("version", "recorded_by", "roll_call__sergeant")
    return {
        receipt.user_id: how_label(receipt)
        for receipt in receipts
        if receipt.version.number == others[receipt.user_id]
    }


def _chunks(rows):
    """The rows in lists of CHUNK, read with a server-side cursor."""
    chunk = []
    for row in rows.iterator(chunk_size=CHUNK):
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _answers_of(bulletin, people):
    """{person id: (cannot comply, implemented at, implemented note, check of understanding)}
    for the CSV: two queries for a chunk of people."""
    cells = {}
    answers = Response.objects.filter(bulletin=bulletin, user_id__in=people)
    for answer in answers.select_related("resolved_by"):
        cell = cells.setdefault(answer.user_id, [[], "", "", ""])
        if answer.kind == Response.Kind.CANNOT_COMPLY:
            cell[0].append(_cannot_comply_text(answer))
        elif not cell[1]:
            cell[1], cell[2] = _local(answer.created_at), answer.detail
    tries = (
        QuizAttempt.objects.filter(bulletin=bulletin, user_id__in=people)
        .values("user_id")
        .annotate(tries=Count("pk"), wrong=Count("pk", filter=Q(passed=False)))
        .values_list("user_id", "tries", "wrong")
    )
    for person, count, wrong in tries.order_by():
        cell = cells.setdefault(person, [[], "", "", ""])
        cell[3] = f"{count} {'try' if count == 1 else 'tries'}, {wrong} wrong"
    return {person: ("; ".join(cc), *rest) for person, (cc, *rest) in cells.items()}


def _cannot_comply_text(answer):
    """'2026-12-04T08:12:00-05:00 No partner available: detail (open)', or (resolved ...)."""
    text = f"{_local(answer.created_at)} {answer.reason_label}"
    if answer.detail:
        text += f": {answer.detail}"
    if answer.resolved_at is None:
        return f"{text} (open)"
    by = answer.resolved_by.name if answer.resolved_by else ""
    return f"{text} (resolved {_local(answer.resolved_at)} by {by}: {answer.resolution})"


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
    versions = BulletinVersion.objects.filter(bulletin=bulletin).select_related(
        "created_by", "approved_by"
    )
    receipts = {
        r.version_id: r
        for r in Receipt.objects.filter(bulletin=bulletin, user=person).select_related(
            "recorded_by", "roll_call__sergeant"
        )
    }
    reminders = Reminder.objects.filter(recipient=recipient).select_related("unit", "sent_by")
    events = AuditEvent.objects.filter(
        object_type="bulletins.bulletin", object_id=str(bulletin.pk), actor=person
    ).order_by("at", "id")
    answers = Response.objects.filter(bulletin=bulletin, user=person).select_related(
        "version", "resolved_by"
    )
    tries = QuizAttempt.objects.filter(bulletin=bulletin, user=person).select_related("version")
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
            "started_from": _started_from(bulletin),
            "approval": _approval(bulletin),
        },
        "person": {
            "name": person.name,
            "email": person.email,
            "badge": person.badge,
            "unit_when_told": recipient.unit.name if recipient.unit else "",
            "told_at": _local(recipient.added_at),
        },
        "versions": [_version(version, receipts.get(version.pk)) for version in versions],
        "responses": [_response(answer) for answer in answers],
        "check_of_understanding": _tries(tries.order_by("created_at", "pk")),
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
        "approved_by": version.approved_by.name if version.approved_by_id else "",
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
        "method": receipt.method if receipt and receipt.acknowledged_at else "",
        "how": how_label(receipt) if receipt and receipt.acknowledged_at else "",
        "acknowledged_on_device_at": _local(receipt.acknowledged_on_device_at) if receipt else "",
    }


def _approval(bulletin):
    """Who wrote it and who approved it, as the bulletin page says it (issue 21)."""
    Approval = bulletin.Approval
    author = bulletin.issued_by.name
    if bulletin.approval in (Approval.EMERGENCY, Approval.CONFIRMED):
        said = f"Published in an emergency by {author} ({bulletin.emergency_reason})"
        if bulletin.approval == Approval.CONFIRMED:
            said += f"; confirmed by {bulletin.approved_by.name} at {_local(bulletin.approved_at)}"
        return said
    if bulletin.approved_by_id:
        return f"Written by {author}, approved by {bulletin.approved_by.name} at " + _local(
            bulletin.approved_at
        )
    return ""


def _started_from(bulletin):
    """'template <name>, version N' when the bulletin was started from a template."""
    if bulletin.template_version_id is None:
        return ""
    started = bulletin.template_version
    return f"template {started.template.name}, version {started.number}"


def _response(answer):
    """One answer back ("cannot comply" or "implemented") with what signed it."""
    fields = {
        "kind": answer.get_kind_display(),
        "version": answer.version.number,
        "at": _local(answer.created_at),
    }
    if answer.kind == Response.Kind.CANNOT_COMPLY:
        fields |= {
            "reason": answer.reason_label,
            "detail": answer.detail,
            "resolved_at": _local(answer.resolved_at),
            "resolved_by": answer.resolved_by.name if answer.resolved_by else "",
            "resolution": answer.resolution,
        }
    else:
        fields["note"] = answer.detail
    return fields | {
        "statement_sha256": answer.statement_hash,
        "signed_in_with": answer.auth_method,
        "ip": answer.ip,
        "user_agent": answer.user_agent,
    }


def _tries(attempts):
    """The check of understanding: how many tries, wrong and right, and each one's time."""
    tries = [
        {"at": _local(attempt.created_at), "version": attempt.version.number,
         "passed": attempt.passed}
        for attempt in attempts
    ]  # fmt: skip
    right = sum(attempt["passed"] for attempt in tries)
    return {"attempts": len(tries), "wrong": len(tries) - right, "right": right, "tries": tries}


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

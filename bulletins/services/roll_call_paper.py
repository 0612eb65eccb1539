"""Signatures on the printed roll-call sheet, recorded afterwards by the sergeant.

A person present at a finished roll call who signed the sheet instead of co-signing on a phone
is recorded here: one receipt per order briefed (method `paper`, `recorded_by` the sergeant),
their recipient row acknowledged with `acknowledged_method` "paper" (counted apart on the
coverage page: a weaker method than their own signature), and audited. Never twice: a person
already co-signed or recorded is not offered again, an order they had acknowledged already is
skipped, and an order amended (material) since the briefing is refused for everyone.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from bulletins.caching import changes
from bulletins.models import Bulletin, Receipt, Recipient, RollCall, RollCallPerson
from bulletins.services.reading import authentication_summary, receipt_upsert
from bulletins.services.roll_call import titled
from portal import audit
from portal.models import AuditEvent

PAPER_STATEMENT = "Signed the roll-call sheet (recorded by {sergeant})"
PAPER_AUTH_METHOD = "recorded-by-sergeant:{summary}"
NOT_FINISHED = "Finish the roll call first: only then can signatures on the sheet be recorded."
NONE_CHOSEN = "Tick at least one person who signed the sheet."
NOT_OFFERED = "{names}: not present at this roll call, or already recorded. Nothing was recorded."
CHANGED = '"{title}" changed after roll call: not recorded on paper. They must read it.'
ENDED = '"{title}" is no longer in force: not recorded.'


@dataclass
class PaperResult:
    """What `record_paper_signatures` did, for the page to say."""

    people: list = field(default_factory=list)  # users recorded
    receipts: int = 0
    skipped: int = 0  # orders those people had acknowledged already, or were not told of
    refused: list = field(default_factory=list)  # why an order briefed was not recorded


def paper_candidates(roll_call):
    """The people of a finished roll call who may still be recorded as signed on paper:
    present, not co-signed on a phone, not recorded before."""
    return (
        RollCallPerson.objects.filter(
            roll_call=roll_call,
            present=True,
            co_signed_at__isnull=True,
            signed_on_paper_at__isnull=True,
        )
        .select_related("user")
        .order_by("user__name", "pk")
    )


def paper_recorded(roll_call):
    """The people of `roll_call` recorded as signed on paper, with who recorded them."""
    return (
        RollCallPerson.objects.filter(roll_call=roll_call, signed_on_paper_at__isnull=False)
        .select_related("user", "paper_recorded_by")
        .order_by("user__name", "pk")
    )


def _receipt_sql(rows):
    """One INSERT of every receipt, completing a receipt a first open wrote and never
    rewriting one acknowledged (`reading.receipt_upsert`); returns the (user, version) written."""
    table = Receipt._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * rows)
    upsert = receipt_upsert(table, "method", "roll_call_id", "recorded_by_id")
    return f"""
INSERT INTO {table} (bulletin_id, version_id, user_id, opened_at, acknowledged_at, statement,
    content_hash, auth_method, ip, user_agent, method, roll_call_id, recorded_by_id)
VALUES {values}{upsert}RETURNING user_id, version_id"""


def _briefings(roll_call, now):
    """[(briefing, bulletin)] of the orders briefed, and why others are refused: an order
    amended (material) since the briefing, or no longer in force, is not recorded on paper."""
    briefed, refused = [], []
    for briefing in roll_call.briefings.select_related("bulletin", "version").order_by("pk"):
        bulletin = briefing.bulletin
        if bulletin.state_at(now) != Bulletin.Status.IN_FORCE:
            refused.append(ENDED.format(title=bulletin.title))
        elif bulletin.ack_version > briefing.version.number:
            refused.append(CHANGED.format(title=bulletin.title))
        else:
            briefed.append((briefing, bulletin))
    return briefed, refused


@transaction.atomic
def record_paper_signatures(roll_call, *, person_ids, by, now, request=None):
    """Record that the people `person_ids` (user ids) of `roll_call` signed the printed sheet,
    as the sergeant `by` says after the roll call. Returns a PaperResult.

    ValidationError, nothing written: the roll call is not finished, nobody chosen, or someone
    chosen is not a candidate (`paper_candidates`: present, not co-signed, not recorded)."""
    roll_call = RollCall.objects.select_for_update().get(pk=roll_call.pk)  # one at a time
    if roll_call.finished_at is None:
        raise ValidationError(NOT_FINISHED)
    chosen = {int(pk) for pk in person_ids}
    if not chosen:
        raise ValidationError(NONE_CHOSEN)
    rows = {row.user_id: row for row in paper_candidates(roll_call).filter(user_id__in=chosen)}
    missing = chosen - set(rows)
    if missing:
        names = RollCallPerson.objects.filter(roll_call=roll_call, user_id__in=missing)
        listed = ", ".join(sorted(names.values_list("user__name", flat=True))) or "Someone"
        raise ValidationError(NOT_OFFERED.format(names=listed))
    briefed, refused = _briefings(roll_call, now)
    result = PaperResult(people=[row.user for row in rows.values()], refused=refused)
    written = _write_receipts(roll_call, briefed, rows, by=by, now=now, request=request)
    result.receipts = len(written)
    result.skipped = len(briefed) * len(rows) - len(written)
    _acknowledge_recipients(briefed, written, now)
    RollCallPerson.objects.filter(pk__in=[row.pk for row in rows.values()]).update(
        signed_on_paper_at=now, paper_recorded_by=by
    )
    _audit(roll_call, briefed, rows, written, by=by, now=now, request=request)
    return result


def _still_to_acknowledge(briefed, people):
    """{(user id, version id)} of the briefed orders the people were told and have not
    acknowledged at the version briefed (or later)."""
    wanted = Q()
    for briefing, bulletin in briefed:
        wanted |= Q(bulletin=bulletin) & (
            Q(acknowledged_version__isnull=True)
            | Q(acknowledged_version__lt=briefing.version.number)
        )
    if not briefed:
        return set()
    versions = {bulletin.pk: briefing.version_id for briefing, bulletin in briefed}
    told = Recipient.objects.filter(wanted, user_id__in=people).values_list("user_id", "bulletin")
    return {(user_id, versions[bulletin_id]) for user_id, bulletin_id in told}


def _write_receipts(roll_call, briefed, rows, *, by, now, request):
    due = _still_to_acknowledge(briefed, list(rows))
    if not due:
        return set()
    evidence = audit.new_event("roll_call.paper", by=by, request=request)
    summary = authentication_summary(request) if request is not None else "the sergeant"
    statement = PAPER_STATEMENT.format(sergeant=titled(by))[:300]
    auth_method = PAPER_AUTH_METHOD.format(summary=summary)[:64]
    when = connection.ops.adapt_datetimefield_value(now)
    ip = connection.ops.adapt_ipaddressfield_value(evidence.ip)
    params = []
    for briefing, bulletin in briefed:
        version = briefing.version
        for user_id in rows:
            if (user_id, version.pk) in due:
                params += [bulletin.pk, version.pk, user_id, when, when, statement,
                           version.content_hash, auth_method, ip, evidence.user_agent,
                           Receipt.Method.PAPER.value, roll_call.pk, by.pk]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_receipt_sql(len(params) // 13), params)
        return set(cursor.fetchall())


def _acknowledge_recipients(briefed, written, now):
    """The recipient rows of the receipts written: acknowledged, on paper."""
    for briefing, bulletin in briefed:
        number = briefing.version.number
        people = [user_id for user_id, version_id in written if version_id == briefing.version_id]
        if not people:
            continue
        Recipient.objects.filter(bulletin=bulletin, user_id__in=people).filter(
            Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=number)
        ).update(
            acknowledged_version=number,
            acknowledged_at=now,
            acknowledged_method=Receipt.Method.PAPER.value,
            first_opened_at=Coalesce("first_opened_at", now),
        )
        changes.recipients_changed(bulletin.pk)
    changes.readers_changed({user_id for user_id, _ in written})


def _audit(roll_call, briefed, rows, written, *, by, now, request):
    """One event on the roll call (who was recorded), and one per receipt on its bulletin, so
    that each bulletin's trail shows who recorded whose signature."""
    audit.record(
        "roll_call.paper_signatures", by=by, obj=roll_call, now=now, request=request,
        people=sorted(rows), receipts=len(written),
    )  # fmt: skip
    events = [
        audit.new_event(
            "bulletin.acknowledge_on_paper", by=by, obj=bulletin, version=briefing.version.number,
            now=now, request=request, person=user_id, roll_call=roll_call.pk,
            content_hash=briefing.version.content_hash,
        )
        for briefing, bulletin in briefed
        for user_id in sorted(rows)
        if (user_id, briefing.version_id) in written
    ]  # fmt: skip
    AuditEvent.objects.bulk_create(events)


def paper_label(receipt, *, recorded_by=None):
    """'signed on paper, recorded by Sgt X at 08:10' (agency local time)."""
    who = recorded_by or receipt.recorded_by
    at = timezone.localtime(receipt.acknowledged_at)
    return f"signed on paper, recorded by {titled(who) if who else 'a supervisor'} at {at:%H:%M}"

"""The sergeant's roll call: the orders read out at the start of a tour, who was present, and
each present officer's co-signature with the roll-call code.

- `orders_to_brief(roll_call, now)`: the Orders in force that people of the roll call's roster
  still need to acknowledge, most urgent first, each with `.not_acknowledged_count` (among those
  marked present, or the whole roster while nobody is) and `.current_version` (the text to read
  out); one query.
- `start_roll_call(unit=, tour=, by=, now=)`: a RollCall with a RollCallPerson per person of the
  tour's roster (`portal.tours.tour_roster`); audited.
- `mark_present(roll_call, present_ids=, by=, now=)`: who is present, before finishing.
- `finish_roll_call(roll_call, present_ids=, briefed_version_ids=, by=, now=)`: records once who
  was present and which versions were briefed (RollCallBriefing), and makes the code; audited. A
  second call changes nothing.
- `briefed_orders(roll_call, person, now)`: what the person would co-sign, order by order, with
  why an order is skipped or refused; `co_sign(roll_call_or_code, person=, now=, request=)`
  writes a roll-call Receipt for each order that can be (refusals raise ValidationError, nothing
  written).
- `method_label(receipt)`: how a receipt was made, in words, for evidence and CSV (select
  `roll_call__sergeant` with the receipts to avoid a query per receipt).
- `acknowledge_briefed(briefing, person=, now=, how=)`: one acknowledgement of a version briefed,
  the receipt saying how, through `reading.acknowledge_made_elsewhere`.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, Q, When
from django.utils import timezone

from bulletins.models import (
    Bulletin,
    BulletinVersion,
    QuizAttempt,
    Receipt,
    Recipient,
    RollCall,
    RollCallBriefing,
    RollCallPerson,
)
from bulletins.permissions import can_author_for
from bulletins.services import reading
from portal import audit, tours

STATEMENT = "I was briefed on this order at roll call and understand it."
# No 0/O, 1/I/L: read off a screen across a muster room and typed on a phone.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

UNKNOWN_CODE = "That roll-call code is not known. Check it with your sergeant."
EXPIRED_CODE = (
    f"This roll-call code has expired (codes last {RollCall.CODE_MINUTES} minutes after roll "
    "call). Open each order and acknowledge it there."
)
NOT_FINISHED = "This roll call is not finished yet. Wait for your sergeant to finish it."
NOT_PRESENT = (
    "You were not marked present at this roll call, so you cannot co-sign it. Ask your sergeant, "
    "or open each order and acknowledge it there."
)
OTHER_ROLL_CALL = (
    "This code is for another roll call than yours. Check the code with your sergeant."
)
CHANGED = "This order changed after roll call - read it."


def normalize_code(text):
    """The code as typed, without spaces or dashes, in capitals ("" if it cannot be a code)."""
    code = "".join((text or "").split()).replace("-", "").upper()
    if len(code) != RollCall.CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return ""
    return code


def _needs_acknowledging():
    """Of a bulletin's recipient rows (joined as `recipients`): not acknowledged at its latest
    material version."""
    return Q(recipients__acknowledged_version__isnull=True) | Q(
        recipients__acknowledged_version__lt=F("ack_version")
    )


def orders_to_brief(roll_call, now):
    """The Orders in force that people of the roll call's roster still need to acknowledge (at
    the current `ack_version`), most urgent first. Each has `.not_acknowledged_count` (among the
    people marked present; the whole roster while nobody is) and `.current_version` (the version
    to read out). One query for the orders and one for their versions."""
    people = list(
        RollCallPerson.objects.filter(roll_call=roll_call).values_list("user_id", "present")
    )
    roster = [user_id for user_id, _ in people]
    counted = [user_id for user_id, present in people if present] or roster
    if not roster:
        return []
    needs = _needs_acknowledging()
    orders = list(
        Bulletin.objects.in_force(now)
        .filter(
            kind=Bulletin.Kind.ORDER,
            agency__path=roll_call.unit.agency_path,
            recipients__user_id__in=roster,
        )
        .annotate(
            roster_outstanding=Count("recipients", filter=needs),
            not_acknowledged_count=Count(
                "recipients", filter=needs & Q(recipients__user_id__in=counted)
            ),
        )
        .filter(roster_outstanding__gt=0)
        .urgent_first()
    )
    versions = BulletinVersion.objects.filter(bulletin__in=[order.pk for order in orders]).filter(
        number=F("bulletin__version")
    )
    by_bulletin = {version.bulletin_id: version for version in versions}
    for order in orders:
        order.current_version = by_bulletin[order.pk]
    return orders


def tour_start(tour, now):
    """The start of the occurrence of `tour` nearest `now` (past or future)."""
    today = tours.local_date(now)
    starts = [tours.tour_window(tour, today + timedelta(days=d))[0] for d in (-1, 0, 1)]
    return min(starts, key=lambda start: abs(start - now))


@transaction.atomic
def start_roll_call(*, unit, tour, by, now):
    """Start the roll call of `tour` (one of `unit`'s tours) for `unit`, by a supervisor whose
    scope covers it: a RollCallPerson per person of the tour's roster, none present yet.
    ValidationError when `by` may not, the tour is not the unit's, or its roster is empty."""
    if not can_author_for(by, unit):
        raise ValidationError("You can run roll call only for the units you supervise.")
    if tour.pk not in {known.pk for known in tours.tours_for(unit)}:
        raise ValidationError(f"{unit.name} has no {tour.name} tour.")
    roster = list(tours.tour_roster(unit, tour).values_list("pk", flat=True))
    if not roster:
        raise ValidationError(
            f"Nobody in {unit.name} has {tour.name} as their regular tour: there is no roster "
            "to call. Give people their tour on their record."
        )
    roll_call = RollCall.objects.create(
        unit=unit, tour_id=tour.pk, tour_name=tour.name, tour_starts_at=tour_start(tour, now),
        sergeant=by, started_at=now,
    )  # fmt: skip
    RollCallPerson.objects.bulk_create(
        [RollCallPerson(roll_call=roll_call, user_id=user_id) for user_id in roster]
    )
    audit.record(
        "roll_call.start", by=by, obj=roll_call, now=now, unit=unit.name, tour=tour.name,
        roster=len(roster),
    )  # fmt: skip
    return roll_call


def _checked_present(roll_call, present_ids):
    roster = set(
        RollCallPerson.objects.filter(roll_call=roll_call).values_list("user_id", flat=True)
    )
    chosen = {int(pk) for pk in present_ids}
    if chosen - roster:
        raise ValidationError("Someone ticked present is not on this roll call's roster.")
    return chosen


def _set_present(roll_call, chosen):
    RollCallPerson.objects.filter(roll_call=roll_call).update(
        present=Case(When(user_id__in=chosen, then=True), default=False)
    )


@transaction.atomic
def mark_present(roll_call, *, present_ids, by, now):
    """Record who is present so far (the counts of the orders follow them). Nothing after the
    roll call is finished: ValidationError."""
    roll_call = RollCall.objects.select_for_update().get(pk=roll_call.pk)
    if roll_call.finished_at is not None:
        raise ValidationError("This roll call is finished: who was present is recorded.")
    _set_present(roll_call, _checked_present(roll_call, present_ids))
    return roll_call


def _new_code(now):
    """A code no roll call whose code is still valid has."""
    for _ in range(20):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(RollCall.CODE_LENGTH))
        if not RollCall.objects.filter(code=code, code_expires_at__gt=now).exists():
            return code
    raise RuntimeError("no free roll-call code")  # 31**6 codes: practically never


@transaction.atomic
def finish_roll_call(roll_call, *, present_ids, briefed_version_ids, by, now):
    """Record the briefing once: who was present, which versions were read out (each a version
    of one of `orders_to_brief`), the time and the sergeant; make the roll-call code, valid for
    RollCall.CODE_MINUTES from now. A roll call already finished is returned as it is (nothing
    changes). ValidationError, nothing written, when nobody is present or a person or version
    is not one of this roll call's."""
    roll_call = RollCall.objects.select_for_update().select_related("unit").get(pk=roll_call.pk)
    if roll_call.finished_at is not None:
        return roll_call
    chosen = _checked_present(roll_call, present_ids)
    if not chosen:
        raise ValidationError("Tick who is present before you finish the roll call.")
    offered = {order.current_version.pk: order for order in orders_to_brief(roll_call, now)}
    briefed = {int(pk) for pk in briefed_version_ids}
    if briefed - set(offered):
        raise ValidationError(
            "An order changed or ended while you were briefing. Check the list and finish again."
        )
    _set_present(roll_call, chosen)
    RollCallBriefing.objects.bulk_create(
        RollCallBriefing(
            roll_call=roll_call,
            bulletin=offered[pk],
            version=offered[pk].current_version,
            briefed_at=now,
        )  # fmt: skip
        for pk in sorted(briefed)
    )
    roll_call.finished_at = now
    roll_call.code = _new_code(now)
    roll_call.code_expires_at = now + timedelta(minutes=RollCall.CODE_MINUTES)
    roll_call.save(update_fields=["finished_at", "code", "code_expires_at"])
    versions = [f"{offered[pk].pk}:v{offered[pk].current_version.number}" for pk in sorted(briefed)]
    audit.record(
        "roll_call.finish", by=by, obj=roll_call, now=now, present=sorted(chosen), versions=versions
    )
    return roll_call


def find_roll_call(code, person, now):
    """The finished roll call of `code` that `person` may co-sign: ValidationError saying why
    not (unknown, expired, another roll call, not present)."""
    code = normalize_code(code)
    matches = list(
        RollCall.objects.filter(code=code).exclude(code="").select_related("unit", "sergeant")
        .order_by("-finished_at")[:5]
    )  # fmt: skip
    if not matches:
        raise ValidationError(UNKNOWN_CODE, code="unknown")
    valid = [rc for rc in matches if rc.code_expires_at and rc.code_expires_at > now]
    roll_call = valid[0] if valid else matches[0]
    check_can_co_sign(roll_call, person, now)
    return roll_call


def check_can_co_sign(roll_call, person, now):
    if roll_call.finished_at is None:
        raise ValidationError(NOT_FINISHED, code="not_finished")
    if roll_call.code_expires_at is None or now >= roll_call.code_expires_at:
        raise ValidationError(EXPIRED_CODE, code="expired")
    mine = RollCallPerson.objects.filter(roll_call=roll_call, user=person).first()
    if mine is None:
        raise ValidationError(OTHER_ROLL_CALL, code="other")
    if not mine.present:
        raise ValidationError(NOT_PRESENT, code="not_present")
    return mine


@dataclass
class BriefedOrder:
    """One order briefed at a roll call, as one person would co-sign it: `state` is "sign",
    "done" (acknowledged already), "changed" (a material amendment since the briefing),
    "ended", "not_yours" (not addressed to them) or "check" (a check of understanding to answer
    on the order's page first)."""

    briefing: RollCallBriefing
    state: str

    @property
    def bulletin(self):
        return self.briefing.bulletin

    @property
    def version(self):
        return self.briefing.version

    @property
    def message(self):
        return {
            "sign": "",
            "done": "You have acknowledged this order already.",
            "changed": CHANGED,
            "ended": "This order is no longer in force.",
            "not_yours": "This order is not addressed to you.",
            "check": "Answer the check of understanding on the order's page to acknowledge it.",
        }[self.state]


def briefed_orders(roll_call, person, now):
    """[BriefedOrder] of the roll call's briefings, most urgent first, for `person`."""
    briefings = list(
        RollCallBriefing.objects.filter(roll_call=roll_call)
        .select_related("bulletin", "version")
        .order_by("bulletin__priority", "-bulletin__effective_at", "-bulletin_id")
    )
    told = dict(
        Recipient.objects.filter(
            user=person, bulletin_id__in=[b.bulletin_id for b in briefings]
        ).values_list("bulletin_id", "acknowledged_version")
    )
    passed = set(
        QuizAttempt.objects.filter(
            user=person, passed=True, version_id__in=[b.version_id for b in briefings]
        ).values_list("version_id", flat=True)
    )
    return [BriefedOrder(b, _state(b, person, told, passed, now)) for b in briefings]


def _state(briefing, person, told, passed, now):
    bulletin = briefing.bulletin
    if bulletin.state_at(now) != Bulletin.Status.IN_FORCE:
        return "ended"
    if bulletin.pk not in told and not bulletin.is_addressed_to(person):
        return "not_yours"
    acknowledged = told.get(bulletin.pk)
    if acknowledged is not None and acknowledged >= bulletin.ack_version:
        return "done"
    if briefing.version.number < bulletin.ack_version:
        return "changed"
    if briefing.version.questions and briefing.version_id not in passed:
        return "check"
    return "sign"


@transaction.atomic
def co_sign(roll_call_or_code, *, person, now, request=None):
    """`person` co-signs the roll call (a RollCall, or its code as typed): a Receipt for each
    briefed order they can still acknowledge (method roll_call, the roll-call statement), their
    recipient rows acknowledged, the usual audit events. Returns the receipts written ([] when
    every order was acknowledged already). ValidationError, nothing written, for an unknown or
    expired code, a roll call not finished, or a person not present at it."""
    if isinstance(roll_call_or_code, RollCall):
        roll_call = roll_call_or_code
        check_can_co_sign(roll_call, person, now)
    else:
        roll_call = find_roll_call(roll_call_or_code, person, now)
    how = {"method": Receipt.Method.ROLL_CALL, "statement": STATEMENT}
    written = [
        order.version.pk
        for order in briefed_orders(roll_call, person, now)
        if order.state == "sign"
        and acknowledge_briefed(order.briefing, person=person, now=now, how=how, request=request)
    ]
    first = RollCallPerson.objects.filter(
        roll_call=roll_call, user=person, co_signed_at__isnull=True
    ).update(co_signed_at=now)
    if first:
        audit.record(
            "roll_call.co_sign", by=person, obj=roll_call, now=now, request=request,
            receipts=len(written),
        )  # fmt: skip
    return list(
        Receipt.objects.filter(user=person, version_id__in=written, roll_call=roll_call)
        .select_related("bulletin", "version")
        .order_by("pk")
    )


def acknowledge_briefed(briefing, *, person, now, how, request=None):
    """Acknowledge the version read out at `briefing` for `person`, the receipt saying `how`
    ({"method": ..., "statement": ...}), through the checked
    way of `reading`: its audit event, recipient row and cache as any acknowledgement. True if
    this call recorded it; ValidationError as `reading.acknowledge` (nothing written). The
    caller checks first that the order still takes it (`briefed_orders`)."""
    return reading.acknowledge_made_elsewhere(
        briefing.bulletin, user=person, version_number=briefing.version.number, now=now,
        request=request, how={"roll_call_id": briefing.roll_call_id, **how},
    )  # fmt: skip


RANKS = {"Sergeant": "Sgt.", "Lieutenant": "Lt.", "Captain": "Capt.", "Deputy Chief": "D.C."}


def titled(person):
    """ "Sgt. Dan Kowalski": the short rank before the name, unless the name has it."""
    short = RANKS.get(person.rank, "")
    if not short or person.name.startswith(short.rstrip(".")):
        return person.name
    return f"{short} {person.name}"


def _clock(moment, *, same_day_as=None):
    """ "07:09" in the agency's time; with the date when not on the day of `same_day_as`."""
    local = timezone.localtime(moment)
    if same_day_as is None or timezone.localtime(same_day_as).date() == local.date():
        return f"{local:%H:%M}"
    return f"{local:%d %b %H:%M}"


def method_label(receipt):
    """How `receipt` was made, in words, in the agency's time: "briefed at roll call by Sgt. X
    at 07:05, co-signed 07:09" for a roll-call receipt; the method's label otherwise."""
    if receipt.method == Receipt.Method.ROLL_CALL and receipt.roll_call_id:
        roll_call = receipt.roll_call
        briefed = roll_call.finished_at or roll_call.started_at
        return (
            f"briefed at roll call by {titled(roll_call.sergeant)} at {_clock(briefed)}, "
            f"co-signed {_clock(receipt.acknowledged_at, same_day_as=briefed)}"
        )
    return Receipt.Method(receipt.method).label

"""A second pair of eyes: submitting for approval, approving or sending back, publishing in an
emergency and its review afterwards, and material amendments that need approval again.

Who needs approval and who may give it is `permissions`' (`needs_approval`, `approvers`,
`can_approve`); `authoring.publish_bulletin` and `amend_bulletin` refuse to go ahead without a
second person where the rule asks for one, so no page can skip this module. Each step is an
append-only `ApprovalStep`, an audit event and, where someone must act, an outbox event.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q

from bulletins import notifications, permissions
from bulletins.caching import changes
from bulletins.models import ApprovalStep, Bulletin, NotificationEvent
from bulletins.services import authoring, reading
from portal import audit
from portal.models import Unit

Approval = Bulletin.Approval
Action = ApprovalStep.Action
Event = NotificationEvent.Event
APPROVED_STATEMENT = reading.APPROVED_STATEMENT
# Awaiting someone's word: a draft or a material amendment submitted, an emergency not reviewed.
WAITING = (Approval.AWAITING, Approval.EMERGENCY)


def approval_needed(bulletin, author):
    """Whether `bulletin`, written by `author`, needs a second person before it goes out."""
    return permissions.needs_approval(
        author, bulletin.audience_targets(), is_exercise=bulletin.is_exercise
    )


def approvers(bulletin):
    """Who may approve `bulletin`: supervisors and admins whose scope covers its whole audience
    (and superusers), never its author."""
    return permissions.approvers(bulletin)


def awaiting(user):
    """What waits for `user`'s word: submitted drafts and amendments, and emergency
    publications not yet reviewed, whose whole audience is in their scope; not their own."""
    if not user.has_perm(permissions.AUTHOR):
        return Bulletin.objects.none()
    return (
        permissions.manageable_bulletins(user)
        .filter(Q(approval=Approval.AWAITING) | Q(approval=Approval.EMERGENCY,
                emergency_review_due_at__isnull=False, status__in=Bulletin.LIVE_STATUSES))
        .exclude(issued_by=user)
    )  # fmt: skip


def awaiting_count(user):
    return awaiting(user).count()


def pending_amendment(bulletin):
    """The material amendment waiting for approval (its SUBMITTED step), or None."""
    if bulletin.status == Bulletin.Status.DRAFT or bulletin.approval != Approval.AWAITING:
        return None
    return bulletin.approval_steps.filter(action=Action.SUBMITTED).order_by("-at", "-pk").first()


def _locked(bulletin):
    """The row, locked; nothing joined (the join would be read as it was before the wait)."""
    return Bulletin.objects.select_for_update().get(pk=bulletin.pk)


def _step(bulletin, action, *, by, now, **fields):
    return ApprovalStep.objects.create(
        bulletin=bulletin, action=action, by=by, at=now, version=bulletin.version, **fields
    )


def _check_approver(user, bulletin, *, proposer=None):
    if not permissions.can_approve(user, bulletin):
        raise PermissionDenied
    if proposer is not None and proposer.pk == user.pk:
        raise PermissionDenied  # nobody approves their own amendment


@transaction.atomic
def submit_for_approval(bulletin, *, by, now):
    """The draft waits for an approver; they are told."""
    bulletin = _locked(bulletin)
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    if bulletin.status != Bulletin.Status.DRAFT:
        raise ValidationError("This bulletin has already been published.")
    if bulletin.approval == Approval.AWAITING:
        raise ValidationError("It is already awaiting approval.")
    if not approval_needed(bulletin, by):
        raise ValidationError("It does not need approval: publish it.")
    authoring._check_time_span(bulletin.effective_at, bulletin.expires_at, now, scheduling=True)
    if not approvers(bulletin).exists():
        raise ValidationError("Nobody may approve this audience: ask your agency's admin.")
    bulletin.approval = Approval.AWAITING
    bulletin.save(update_fields=["approval"])
    step = _step(bulletin, Action.SUBMITTED, by=by, now=now)
    audit.record("bulletin.submit_for_approval", by=by, obj=bulletin, now=now)
    notifications.queue_event(bulletin, Event.APPROVAL_REQUESTED, now=now, key=f"s{step.pk}")
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin


def _already_decided(bulletin):
    if bulletin.approved_by_id is not None and bulletin.approval == Approval.APPROVED:
        return ValidationError(f"Already approved by {bulletin.approved_by.name}.")
    return ValidationError("It is not awaiting approval any more.")


@transaction.atomic
def approve(bulletin, *, by, now):
    """Approve what waits: a draft is published (or scheduled), a material amendment applied.
    The row lock makes two approvers at once publish it once; the second is told who did."""
    bulletin = _locked(bulletin)
    if bulletin.approval != Approval.AWAITING:
        raise _already_decided(bulletin)
    if bulletin.status != Bulletin.Status.DRAFT:
        return _approve_amendment(bulletin, by=by, now=now)
    _check_approver(by, bulletin)
    bulletin = authoring.publish_bulletin(bulletin, by=bulletin.issued_by, now=now, approved_by=by)
    _record_approval(bulletin, by=by, now=now, to=bulletin.issued_by)
    return bulletin


def _record_approval(bulletin, *, by, now, to):
    _step(bulletin, Action.APPROVED, by=by, now=now)
    reading.acknowledge_as_author(bulletin, person=by, now=now, statement=APPROVED_STATEMENT)
    audit.record("bulletin.approve", by=by, obj=bulletin, version=bulletin.version, now=now)
    notifications.queue_event(
        bulletin, Event.APPROVED, now=now, key=f"v{bulletin.version}",
        detail={"to": to.pk, "by": by.pk},
    )  # fmt: skip
    changes.bulletins_changed(bulletin.agency_id)


def _approve_amendment(bulletin, *, by, now):
    step = pending_amendment(bulletin)
    if step is None:
        raise ValidationError("It is not awaiting approval any more.")
    _check_approver(by, bulletin, proposer=step.by)
    proposal = step.proposal
    bulletin = authoring.amend_bulletin(
        bulletin, by=step.by, now=now, reason=proposal["reason"], is_material=True,
        approved_by=by, **_fields(proposal),
    )  # fmt: skip
    _record_approval(bulletin, by=by, now=now, to=step.by)
    return bulletin


@transaction.atomic
def send_back(bulletin, *, by, now, comment):
    """Not approved: the author (or who proposed the amendment) is told why, edits, and
    submits again."""
    bulletin = _locked(bulletin)
    if bulletin.approval != Approval.AWAITING:
        raise _already_decided(bulletin)
    amendment = pending_amendment(bulletin)
    _check_approver(by, bulletin, proposer=amendment and amendment.by)
    if not comment.strip():
        raise ValidationError({"comment": "Say what must change before you can approve it."})
    if amendment is None:
        bulletin.approval = Approval.SENT_BACK
    else:  # the published version stands as it was approved
        bulletin.approval = Approval.APPROVED if bulletin.approved_by_id else Approval.CONFIRMED
    bulletin.save(update_fields=["approval"])
    step = _step(bulletin, Action.SENT_BACK, by=by, now=now, comment=comment.strip())
    audit.record("bulletin.send_back", by=by, obj=bulletin, now=now, comment=comment.strip())
    notifications.queue_event(
        bulletin, Event.SENT_BACK, now=now, key=f"s{step.pk}",
        detail={"to": (amendment.by_id if amendment else bulletin.issued_by_id),
                "comment": comment.strip(), "by": by.pk},
    )  # fmt: skip
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin


@transaction.atomic
def publish_in_emergency(bulletin, *, by, now, reason):
    """Publish now without approval, with a reason; approvers are told at once and must confirm
    or lift it within EMERGENCY_REVIEW_MINUTES, or it escalates (`escalate_late_reviews`)."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why this cannot wait for approval."})
    bulletin = _locked(bulletin)
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    if bulletin.status == Bulletin.Status.DRAFT and not approval_needed(bulletin, by):
        raise ValidationError("It does not need approval: publish it.")
    bulletin = authoring.publish_bulletin(bulletin, by=by, now=now, emergency_reason=reason)
    _record_emergency(bulletin, by=by, now=now, reason=reason)
    return bulletin


def _record_emergency(bulletin, *, by, now, reason):
    _step(bulletin, Action.EMERGENCY, by=by, now=now, comment=reason.strip())
    audit.record(
        "bulletin.emergency_publish", by=by, obj=bulletin, version=bulletin.version, now=now,
        reason=reason.strip(),
    )  # fmt: skip
    notifications.queue_event(bulletin, Event.EMERGENCY, now=now, key=f"v{bulletin.version}")
    changes.bulletins_changed(bulletin.agency_id)


@transaction.atomic
def confirm_emergency(bulletin, *, by, now):
    """An approver agrees, after the fact, with an emergency publication."""
    bulletin = _locked(bulletin)
    _check_reviewable(bulletin, by)
    Bulletin.objects.filter(pk=bulletin.pk).update(
        approval=Approval.CONFIRMED, approved_by=by, approved_at=now, emergency_review_due_at=None
    )
    bulletin.versions.filter(number=bulletin.version).update(approved_by=by)
    bulletin.refresh_from_db()
    _step(bulletin, Action.CONFIRMED, by=by, now=now)
    audit.record("bulletin.confirm_emergency", by=by, obj=bulletin, now=now)
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin


@transaction.atomic
def lift_on_review(bulletin, *, by, now, reason):
    """An approver does not agree: the emergency publication is lifted with their reason."""
    bulletin = _locked(bulletin)
    _check_reviewable(bulletin, by)
    bulletin = authoring.lift_bulletin(bulletin, by=by, now=now, reason=reason)
    Bulletin.objects.filter(pk=bulletin.pk).update(emergency_review_due_at=None)
    bulletin.refresh_from_db()
    _step(bulletin, Action.LIFTED, by=by, now=now, comment=reason.strip())
    audit.record("bulletin.lift_on_review", by=by, obj=bulletin, now=now, reason=reason.strip())
    return bulletin


def _check_reviewable(bulletin, by):
    if bulletin.approval != Approval.EMERGENCY or bulletin.emergency_review_due_at is None:
        raise ValidationError("This emergency publication has already been reviewed.")
    if bulletin.status not in Bulletin.LIVE_STATUSES:
        raise ValidationError("This bulletin is no longer in force.")
    _check_approver(by, bulletin)


# Material amendments -------------------------------------------------------------------------


def _proposal(reason, fields):
    """The amended fields as JSON: datetimes as ISO text, named so they come back as such."""
    moments = [name for name, value in fields.items() if isinstance(value, datetime)]
    values = {
        name: value.isoformat() if name in moments else value for name, value in fields.items()
    }
    return {"reason": reason, "fields": values, "datetimes": moments}


def _fields(proposal):
    fields = dict(proposal["fields"])
    for name in proposal.get("datetimes", []):
        fields[name] = datetime.fromisoformat(fields[name])
    return fields


@transaction.atomic
def propose_amendment(bulletin, *, by, now, reason, **fields):
    """A material amendment that needs approval waits as a SUBMITTED step with its fields; the
    published version stays in force until it is approved (`approve`)."""
    bulletin = _locked(bulletin)
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    if bulletin.state_at(now) not in Bulletin.LIVE_STATUSES:
        raise ValidationError("Only a bulletin that is scheduled or in force can be amended.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why you are amending this bulletin."})
    if bulletin.approval == Approval.AWAITING:
        raise ValidationError("An amendment of this bulletin is already awaiting approval.")
    bulletin.approval = Approval.AWAITING
    bulletin.save(update_fields=["approval"])
    step = _step(bulletin, Action.SUBMITTED, by=by, now=now, proposal=_proposal(reason, fields))
    audit.record("bulletin.propose_amendment", by=by, obj=bulletin, now=now, reason=reason)
    notifications.queue_event(bulletin, Event.APPROVAL_REQUESTED, now=now, key=f"s{step.pk}")
    changes.bulletins_changed(bulletin.agency_id)
    return step


@transaction.atomic
def amend_in_emergency(bulletin, *, by, now, reason, emergency_reason, **fields):
    """A material amendment applied at once, reviewed afterwards like an emergency
    publication."""
    if not emergency_reason.strip():
        raise ValidationError({"emergency_reason": "Say why this cannot wait for approval."})
    bulletin = authoring.amend_bulletin(
        bulletin, by=by, now=now, reason=reason, is_material=True,
        emergency_reason=emergency_reason, **fields,
    )  # fmt: skip
    _record_emergency(bulletin, by=by, now=now, reason=emergency_reason)
    return bulletin


# Late reviews ---------------------------------------------------------------------------------


def late_reviews(now):
    return Bulletin.objects.filter(
        approval=Approval.EMERGENCY, emergency_review_due_at__lte=now,
        status__in=Bulletin.LIVE_STATUSES,
    )  # fmt: skip


def escalation_units(bulletin):
    """The units told, step by step, of an emergency publication nobody reviewed: from the
    one above the approvers' level (the lowest unit covering the whole audience) up to the
    agency (whose admins are told at the top)."""
    paths = [unit.path for unit, _ in bulletin.audience_targets()]
    common = paths[0][: min(len(path) for path in paths)]
    while not all(path.startswith(common) for path in paths):
        common = common[: -Unit.steplen]
    above = [common[:end] for end in range(len(common) - Unit.steplen, 0, -Unit.steplen)]
    units = {unit.path: unit for unit in Unit.objects.filter(path__in=above or [common])}
    return [units[path] for path in above or [common] if path in units]


@transaction.atomic
def escalate_late_review(pk, *, now):
    """Tell the next unit up of an emergency publication not reviewed in time, one step per
    Immediate cadence since it fell due (each step once: its outbox key). Returns the number
    of steps it took now."""
    bulletin = late_reviews(now).select_for_update().filter(pk=pk).first()
    if bulletin is None:
        return 0
    cadence = timedelta(minutes=settings.REMINDER_DELAY_MINUTES[Bulletin.Priority.IMMEDIATE])
    units = escalation_units(bulletin)
    due_steps = min(int((now - bulletin.emergency_review_due_at) / cadence) + 1, len(units))
    done = set(
        NotificationEvent.objects.filter(bulletin=bulletin, event=Event.EMERGENCY_LATE).values_list(
            "key", flat=True
        )
    )
    taken = 0
    for step, unit in enumerate(units[:due_steps]):
        key = f"v{bulletin.version}-step{step}"
        if key in done:
            continue
        notifications.queue_event(
            bulletin, Event.EMERGENCY_LATE, now=now, key=key, detail={"unit": unit.pk}
        )
        audit.record(
            "bulletin.emergency_late", obj=bulletin, version=bulletin.version, now=now,
            step=step, unit=unit.pk,
        )  # fmt: skip
        taken += 1
    return taken


def escalate_late_reviews(now):
    """The sweep's part: every emergency publication past its review time, step by step."""
    due = late_reviews(now).order_by("pk").values_list("pk", flat=True)
    return sum(escalate_late_review(pk, now=now) for pk in due)

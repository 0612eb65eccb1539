"""Drafting, publishing, amending and lifting bulletins."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q, Value

from bulletins import conflicts, corrections, notifications, permissions, quiz
from bulletins.caching import changes
from bulletins.markup import render_markdown
from bulletins.models import (
    ApprovalStep,
    AudienceUnit,
    Bulletin,
    BulletinVersion,
    NotificationEvent,
    Recipient,
)
from bulletins.services import reading
from portal import audit, database
from portal.celery import queue_after_commit
from portal.models import Unit


def _check_audience(by, targets, *, drafting=False):
    """Drafting (and publishing after approval or in an emergency): any unit of the author's
    agency where the approval rule applies; publishing alone: only units in their command."""
    if not targets:
        raise ValidationError({"audience": "Choose at least one unit."})
    allowed = permissions.can_draft_for if drafting else permissions.can_author_for
    outside = [unit.name for unit, _ in targets if not allowed(by, unit)]
    if outside:
        raise ValidationError({"audience": f"Outside your command: {', '.join(outside)}."})


def _check_time_span(effective_at, expires_at, now, *, scheduling, until_further_notice=False):
    if until_further_notice and expires_at is not None:
        raise ValidationError(
            {"expires_at": "Give an end time or tick Until further notice, not both."}
        )
    if scheduling and effective_at is not None and effective_at < now:
        raise ValidationError({"effective_at": "A scheduled time must be in the future."})
    start = effective_at or now
    if expires_at is not None and expires_at <= start:
        raise ValidationError({"expires_at": "The end must be after the bulletin takes effect."})


SUPERSEDE_CHOICES = 50  # the most recent bulletins offered to supersede


def supersedable(user, now):
    """Bulletins `user` may choose to supersede: scheduled or in force (by the clock), and
    theirs to manage; most recent first."""
    return (
        permissions.manageable_bulletins(user)
        .filter(status__in=Bulletin.LIVE_STATUSES)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by(F("effective_at").desc(nulls_last=True), "-pk")
    )


def _set_supersedes(bulletin, chosen, *, by, now):
    chosen = list(chosen)
    allowed = set(
        supersedable(by, now)
        .filter(pk__in=[old.pk for old in chosen], agency_id=bulletin.agency_id)
        .values_list("pk", flat=True)
    )
    refused = [old.title for old in chosen if old.pk not in allowed]
    crossed = [old.title for old in chosen if old.is_exercise != bulletin.is_exercise]
    if crossed:
        what = "a real order" if bulletin.is_exercise else "an exercise"
        raise ValidationError(
            {"supersedes": f"An exercise and a real order never replace each other: "
             f"{', '.join(crossed)} is {'real' if bulletin.is_exercise else 'an exercise'}; "
             f"this bulletin cannot supersede {what}."}
        )  # fmt: skip
    if refused:
        raise ValidationError(
            {"supersedes": f"You cannot supersede: {', '.join(refused)}. It is no longer in force"
             " or not yours to lift."}
        )  # fmt: skip
    bulletin.supersedes.set(chosen)


@transaction.atomic
def save_draft(
    *, by, targets, now, bulletin=None, until_further_notice=False, supersedes=None, **fields
):
    """Create or update a draft. `targets` is [(unit, include_subtree), ...]; an end time and
    `until_further_notice` together are refused (no end time is ever dropped silently).
    `supersedes`: the bulletins its taking effect lifts (None: leave them as they are)."""
    _check_audience(by, targets, drafting=True)
    _check_time_span(
        fields.get("effective_at"),
        fields.get("expires_at"),
        now,
        scheduling=True,
        until_further_notice=until_further_notice,
    )
    if bulletin is None:
        bulletin = Bulletin(
            issued_by=by,
            created_at=now,
            agency=Unit.objects.get_root_nodes().get(path=targets[0][0].agency_path),
        )
        action = "bulletin.create"
    else:
        bulletin = Bulletin.objects.select_for_update().get(pk=bulletin.pk)
        if bulletin.status != Bulletin.Status.DRAFT:
            raise ValidationError("Published bulletins are changed by amending them.")
        action = "bulletin.update_draft"
        if bulletin.approval == Bulletin.Approval.AWAITING:  # approvers see what they approve
            bulletin.approval = Bulletin.Approval.NOT_NEEDED
            ApprovalStep.objects.create(
                bulletin=bulletin, action=ApprovalStep.Action.WITHDRAWN, by=by, at=now,
                comment="Changed after it was submitted: submit it again.",
            )  # fmt: skip
            changes.bulletins_changed(bulletin.agency_id)  # the approvers' count
    _check_template_version(bulletin, fields.get("template_version"))
    quiz.check(fields.get("questions", []))
    for name, value in fields.items():
        setattr(bulletin, name, value)
    bulletin.body_html = render_markdown(bulletin.body)
    bulletin.save()
    bulletin.audience.all().delete()
    AudienceUnit.objects.bulk_create(
        AudienceUnit(bulletin=bulletin, unit=unit, include_subtree=subtree)
        for unit, subtree in targets
    )
    bulletin.audience_changed()
    if supersedes is not None:
        _set_supersedes(bulletin, supersedes, by=by, now=now)
    audit.record(action, by=by, obj=bulletin, now=now)
    return bulletin


def _check_template_version(bulletin, version):
    """A draft records the template version it started from: one of its own agency's, and not
    of an archived template unless the draft had it before the archiving."""
    if version is None:
        return
    if version.template.agency_id != bulletin.agency_id:
        raise ValidationError({"template_version": "That template is not one of your agency's."})
    if version.template.is_archived and version.pk != bulletin.template_version_id:
        raise ValidationError({"template_version": "That template has been archived."})


def _new_version(bulletin, *, by, now, is_material, reason, approved_by=None):
    bulletin.version += 1
    if is_material:
        bulletin.ack_version = bulletin.version
    return BulletinVersion.objects.create(
        bulletin=bulletin,
        number=bulletin.version,
        title=bulletin.title,
        instruction=bulletin.instruction,
        body=bulletin.body,
        body_html=bulletin.body_html,
        kind=bulletin.kind,
        priority=bulletin.priority,
        effective_at=bulletin.effective_at,
        expires_at=bulletin.expires_at,
        is_material=is_material,
        reason=reason,
        statement=bulletin.statement,
        implemented_from=bulletin.implemented_from,
        implemented_prompt=bulletin.implemented_prompt,
        questions=bulletin.questions,
        content_hash=BulletinVersion.hash_content(
            title=bulletin.title,
            instruction=bulletin.instruction,
            body=bulletin.body,
            kind=bulletin.kind,
            priority=bulletin.priority,
        ),
        created_at=now,
        created_by=by,
        approved_by=approved_by,
    )


def add_recipients(bulletin, members, *, now):
    """Write one recipient row per member in a single INSERT ... SELECT (no Python loop).

    Members already told are left as they are. Returns the number of rows written.
    """
    rows = members.annotate(
        r_bulletin=Value(bulletin.pk),
        r_user=F("id"),
        r_unit=F("unit_id"),
        r_added=Value(now, output_field=Recipient._meta.get_field("added_at")),
    ).values_list("r_bulletin", "r_user", "r_unit", "r_added")
    told = database.insert_from(
        Recipient,
        ["bulletin_id", "user_id", "unit_id", "added_at"],
        rows,
        on_conflict="(bulletin_id, user_id)",
    )
    if told:
        changes.recipients_changed(bulletin.pk)
    return told


def fits_inline(members):
    """A small audience is written inside the publishing transaction; a large one (the whole
    agency) right after commit by a task, so the publish request returns at once."""
    limit = settings.FAN_OUT_INLINE_LIMIT
    return members[: limit + 1].count() <= limit


@transaction.atomic
def write_recipients(pk, *, now):
    """Resolve a published bulletin's audience into recipient rows, once (idempotent: the row
    lock and `recipients_written_at`), then deliver the notifications that waited for them.
    Officers never wait for this: visibility follows the audience rule and the clock."""
    bulletin = Bulletin.objects.select_for_update().get(pk=pk)
    if bulletin.recipients_written_at is not None or bulletin.published_at is None:
        return 0
    told = add_recipients(bulletin, bulletin.members(), now=bulletin.published_at)
    Bulletin.objects.filter(pk=pk).update(recipients_written_at=now)
    audit.record("bulletin.told", obj=bulletin, version=bulletin.version, now=now, recipients=told)
    reading.acknowledge_author_told_late(bulletin, now=now)  # the issuer, told only now
    pending = NotificationEvent.objects.filter(bulletin_id=pk, fanned_out_at__isnull=True)
    for event_id in pending.values_list("pk", flat=True):
        notifications.deliver_after_commit(event_id)
    return told


NEEDS_APPROVAL = (
    "This bulletin needs a second person's approval: submit it for approval, or publish it in"
    " an emergency with your reason."
)


def _check_second_person(bulletin, targets, *, by, approved_by, emergency_reason):
    """Alone, `by` publishes only within their command and where no approval is needed; with
    `approved_by` (who may approve it) or an emergency reason, anywhere they may draft."""
    if approved_by is not None:
        if not permissions.can_approve(approved_by, bulletin):
            raise PermissionDenied
        _check_audience(by, targets, drafting=True)
    elif emergency_reason.strip():
        _check_audience(by, targets, drafting=True)
    elif permissions.needs_approval(by, targets, is_exercise=bulletin.is_exercise):
        raise ValidationError(NEEDS_APPROVAL)
    elif not permissions.can_author_for_all(by, [unit for unit, _ in targets]):
        raise PermissionDenied
    else:
        _check_audience(by, targets)


def _record_second_person(bulletin, *, now, approved_by, emergency_reason):
    if approved_by is not None:
        bulletin.approval = Bulletin.Approval.APPROVED
        bulletin.approved_by, bulletin.approved_at = approved_by, now
        return {"approved_by": approved_by.pk}
    if emergency_reason.strip():
        bulletin.approval = Bulletin.Approval.EMERGENCY
        bulletin.emergency_reason = emergency_reason.strip()
        due = now + timedelta(minutes=settings.EMERGENCY_REVIEW_MINUTES)
        bulletin.emergency_review_due_at = due
        return {"emergency": True, "emergency_reason": bulletin.emergency_reason}
    return {}


@transaction.atomic
def publish_bulletin(bulletin, *, by, now, approved_by=None, emergency_reason=""):
    """Publish a draft (now, or scheduled). Where the approval rule asks for a second person,
    only with `approved_by` (`services.approval.approve` passes the approver) or with an
    emergency reason (reviewed afterwards)."""
    bulletin = Bulletin.objects.select_for_update().get(pk=bulletin.pk)
    if bulletin.status != Bulletin.Status.DRAFT:
        raise ValidationError("This bulletin has already been published.")
    targets = bulletin.audience_targets()
    _check_second_person(
        bulletin, targets, by=by, approved_by=approved_by, emergency_reason=emergency_reason
    )
    _check_time_span(bulletin.effective_at, bulletin.expires_at, now, scheduling=True)
    conflicts.check_before_publishing(bulletin, now=now)  # a higher order: the author's word
    approval = _record_second_person(
        bulletin, now=now, approved_by=approved_by, emergency_reason=emergency_reason
    )
    bulletin.effective_at = bulletin.effective_at or now
    bulletin.status = (
        Bulletin.Status.SCHEDULED if bulletin.effective_at > now else Bulletin.Status.IN_FORCE
    )
    bulletin.published_at = now
    if bulletin.expires_at is None:
        bulletin.next_review_at = bulletin.effective_at + bulletin.review_interval
    bulletin.body_html = render_markdown(bulletin.body)
    version = _new_version(
        bulletin, by=by, now=now, is_material=True, reason="", approved_by=approved_by
    )
    members = bulletin.members()
    if fits_inline(members):
        told = add_recipients(bulletin, members, now=now)
        bulletin.recipients_written_at = now
    else:
        told = None  # written by the task: its count is in the "bulletin.told" audit event
        queue_after_commit("bulletins.tasks.write_recipients_task", bulletin.pk)
    bulletin.save()
    audit.record(
        "bulletin.publish", by=by, obj=bulletin, version=version.number, now=now, recipients=told,
        **approval,
    )  # fmt: skip
    scheduled = bulletin.status == Bulletin.Status.SCHEDULED  # lifts them when it takes effect
    lift_superseded(bulletin, by=by, now=now, check_only=scheduled)
    reading.acknowledge_as_author(bulletin, person=by, now=now)  # the issuer: acknowledged
    changes.bulletins_changed(bulletin.agency_id)
    if bulletin.status == Bulletin.Status.IN_FORCE:
        notifications.queue_event(
            bulletin, NotificationEvent.Event.PUBLISHED, now=now, key=f"v{version.number}"
        )
    conflicts.tell_higher_issuers(bulletin, now=now)
    return bulletin


def amendment_needs_approval(bulletin, by, *, is_material):
    """A material change to a bulletin that needed a second person needs one again, where the
    rule asks it of `by`; corrections never do."""
    return (
        is_material
        and bulletin.approval != Bulletin.Approval.NOT_NEEDED
        and permissions.needs_approval(
            by, bulletin.audience_targets(), is_exercise=bulletin.is_exercise
        )
    )


@transaction.atomic
def amend_bulletin(
    bulletin, *, by, now, reason, is_material, approved_by=None, emergency_reason="", **fields
):
    """A new version. Material: everyone must acknowledge again. Non-material: acks carry over.
    A material change that needs approval (`amendment_needs_approval`) only with `approved_by`
    or an emergency reason, as for publication."""
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    bulletin = Bulletin.objects.select_for_update().get(pk=bulletin.pk)
    if approved_by is not None and not permissions.can_approve(approved_by, bulletin):
        raise PermissionDenied
    second = approved_by is not None or emergency_reason.strip()
    if not second and amendment_needs_approval(bulletin, by, is_material=is_material):
        raise ValidationError(NEEDS_APPROVAL)
    if bulletin.state_at(now) not in Bulletin.LIVE_STATUSES:
        raise ValidationError("Only a bulletin that is scheduled or in force can be amended.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why you are amending this bulletin."})
    if "is_exercise" in fields and fields["is_exercise"] != bulletin.is_exercise:
        raise ValidationError("An exercise can never become a real order: write a new one.")
    _check_time_span(
        bulletin.effective_at, fields.get("expires_at", bulletin.expires_at), now, scheduling=False
    )
    corrections.check_amendment(bulletin, fields, is_material=is_material)
    for name, value in fields.items():
        setattr(bulletin, name, value)
    bulletin.body_html = render_markdown(bulletin.body)
    if bulletin.expires_at is None and bulletin.next_review_at is None:
        bulletin.next_review_at = now + bulletin.review_interval
    approval = _record_second_person(
        bulletin, now=now, approved_by=approved_by, emergency_reason=emergency_reason
    )
    version = _new_version(
        bulletin, by=by, now=now, is_material=is_material, reason=reason, approved_by=approved_by
    )
    bulletin.save()
    if is_material:  # whoever made the change counts as acknowledging the new version
        reading.acknowledge_as_author(
            bulletin, person=by, now=now, statement=reading.AMENDED_STATEMENT
        )
    audit.record(
        "bulletin.amend",
        by=by,
        obj=bulletin,
        version=version.number,
        now=now,
        material=is_material,
        reason=reason,
        **approval,
    )
    if is_material and bulletin.state_at(now) == Bulletin.Status.IN_FORCE:
        notifications.queue_event(
            bulletin, NotificationEvent.Event.AMENDED, now=now, key=f"v{version.number}"
        )
    elif bulletin.state_at(now) == Bulletin.Status.IN_FORCE:
        notifications.queue_correction(bulletin, by=by, now=now)
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin


def superseded_reason(bulletin):
    return f"Superseded by {bulletin.title} (#{bulletin.pk})"


@transaction.atomic(savepoint=False)  # in the caller's transaction: no savepoint of its own
def lift_superseded(bulletin, *, by, now, check_only=False, strict=True):
    """Lift what `bulletin` supersedes, as `by`, in the caller's transaction. Strict (on
    publication): one that cannot be lifted refuses it all. Not strict (the clock, when a
    scheduled bulletin takes effect): one already ended is left as it is. `check_only`: only
    make sure each could be lifted now (a scheduled bulletin lifts them when it takes effect)."""
    for old in bulletin.supersedes.order_by("pk"):
        if strict and not permissions.can_manage(by, old):
            raise ValidationError(f"You may not lift '{old.title}': take it out of Supersedes.")
        live = Bulletin.objects.filter(pk=old.pk, status__in=Bulletin.LIVE_STATUSES).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
        if not live.exists():
            if strict:
                raise ValidationError(f"'{old.title}' is no longer in force: take it out of "
                                      "Supersedes.")  # fmt: skip
            continue
        if not check_only:
            reason = superseded_reason(bulletin)
            _lift(old, by=by, now=now, reason=reason, superseded_by=bulletin.pk)


@transaction.atomic
def lift_bulletin(bulletin, *, by, now, reason):
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"reason": "Say why you are lifting this bulletin."})
    return _lift(bulletin, by=by, now=now, reason=reason)


def _lift(bulletin, *, by, now, reason, **detail):
    lifted = (
        Bulletin.objects.filter(pk=bulletin.pk, status__in=Bulletin.LIVE_STATUSES)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .update(status=Bulletin.Status.LIFTED, ended_at=now, lifted_by=by, lift_reason=reason)
    )
    if not lifted:
        raise ValidationError("This bulletin is no longer in force.")
    bulletin.refresh_from_db()
    audit.record(
        "bulletin.lift", by=by, obj=bulletin, version=bulletin.version, now=now, reason=reason,
        **detail,
    )  # fmt: skip
    if bulletin.effective_at <= now:
        notifications.queue_event(bulletin, NotificationEvent.Event.LIFTED, now=now)
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin

"""What happens on time: scheduled bulletins take effect, fixed terms end, until-further-notice
orders come up for review.

Reads never wait for this: "in force" is decided by the clock in the query. The sweep records
each transition once - a conditional UPDATE re-checked by the database - with its audit event
and its notifications in the same transaction, so running it twice, late, or in two workers at
once changes nothing twice.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from bulletins import notifications, permissions
from bulletins.caching import changes
from bulletins.models import Bulletin, NotificationEvent
from bulletins.services import approval, chasing, responses
from bulletins.services.authoring import add_recipients, lift_superseded, write_recipients
from portal import audit

Event = NotificationEvent.Event


def review_grace():
    return timedelta(hours=settings.REVIEW_GRACE_HOURS)


def recorded_at(now):
    """When a transition is recorded: the sweep's `now`, or later if the sweep has been running
    a while (so the audit trail shows true lateness)."""
    return max(now, timezone.now())


def sweep(now):
    """One pass over everything due at `now`. Returns how many transitions it recorded."""
    return {
        "took_effect": _each(_due_to_take_effect(now), take_effect, now),
        "ended": _each(_due_to_end(now), end_on_time, now),
        "review_requested": _each(_due_for_review(now), request_review, now),
        "review_overdue": _each(_review_overdue(now), flag_review_overdue, now),
        "reminders": chasing.chase(now),
        "cannot_comply_escalated": responses.sweep_cannot_comply(now),
        "emergency_late": approval.escalate_late_reviews(now),
        # A safety net: the task that writes recipient rows after publication was lost.
        "told": _each(Bulletin.objects.published().filter(
            recipients_written_at__isnull=True, published_at__lte=now), _write_recipients, now),
    }  # fmt: skip


def _write_recipients(pk, *, now):
    return write_recipients(pk, now=now) > 0


def _each(due, transition, now):
    return sum(transition(pk, now=now) for pk in due.order_by("pk").values_list("pk", flat=True))


def _due_to_take_effect(now):
    return Bulletin.objects.filter(status=Bulletin.Status.SCHEDULED, effective_at__lte=now)


def _due_to_end(now):
    return Bulletin.objects.filter(status__in=Bulletin.LIVE_STATUSES, expires_at__lte=now)


def _due_for_review(now):
    return Bulletin.objects.filter(
        status=Bulletin.Status.IN_FORCE, expires_at__isnull=True,
        next_review_at__lte=now, review_requested_at__isnull=True,
    )  # fmt: skip


def _review_overdue(now):
    return Bulletin.objects.filter(
        status=Bulletin.Status.IN_FORCE, expires_at__isnull=True,
        review_requested_at__lte=now - review_grace(), review_overdue_at__isnull=True,
    )  # fmt: skip


def _update_if_due(due, pk, **values):
    """Set `values` on bulletin `pk` if it is among `due`, as the database sees the row at the
    UPDATE. Returns the bulletin as it then is, or None when it was not due (any more)."""
    if not due.filter(pk=pk).update(**values):
        return None
    return Bulletin.objects.get(pk=pk)


def _record(bulletin, action, event, *, now, key="", audit_at=None, **detail):
    """What every transition of the sweep does once its UPDATE took: its audit event (at
    `audit_at`, by default `now`), its notification, and word that the bulletins changed."""
    version = bulletin.version
    audit.record(action, obj=bulletin, version=version, now=audit_at or now, **detail)
    notifications.queue_event(bulletin, event, now=now, key=key)
    changes.bulletins_changed(bulletin.agency_id)


@transaction.atomic
def take_effect(pk, *, now):
    bulletin = _update_if_due(_due_to_take_effect(now), pk, status=Bulletin.Status.IN_FORCE)
    if bulletin is None:
        return False
    add_recipients(bulletin, bulletin.members(), now=now)
    _record(
        bulletin, "bulletin.take_effect", Event.PUBLISHED, now=now, key=f"v{bulletin.version}",
        audit_at=recorded_at(now), due_at=bulletin.effective_at.isoformat(),
    )  # fmt: skip
    # What it supersedes is lifted now, in the issuer's name (checked at publication); one
    # that ended meanwhile stays as it ended.
    lift_superseded(bulletin, by=bulletin.issued_by, now=now, strict=False)
    return True


@transaction.atomic
def end_on_time(pk, *, now):
    """A fixed term ran out (or a scheduled lift came due). Re-checked against the row as it is
    at the UPDATE, so an extension committed meanwhile wins."""
    bulletin = _update_if_due(
        _due_to_end(now),
        pk,
        status=Case(
            When(lifted_by__isnull=False, then=Value(Bulletin.Status.LIFTED)),
            default=Value(Bulletin.Status.EXPIRED),
        ),
        ended_at=F("expires_at"),
    )
    if bulletin is None:
        return False
    if bulletin.status == Bulletin.Status.LIFTED:
        action, event = "bulletin.lift", Event.LIFTED
    else:
        action, event = "bulletin.expire", Event.ENDED
    due_at = bulletin.expires_at.isoformat()
    _record(bulletin, action, event, now=now, audit_at=recorded_at(now), due_at=due_at)
    return True


@transaction.atomic
def request_review(pk, *, now):
    bulletin = _update_if_due(_due_for_review(now), pk, review_requested_at=now)
    if bulletin is None:
        return False
    _record(bulletin, "bulletin.review_requested", Event.REVIEW, now=now, key=now.isoformat())
    return True


@transaction.atomic
def flag_review_overdue(pk, *, now):
    bulletin = _update_if_due(_review_overdue(now), pk, review_overdue_at=now)
    if bulletin is None:
        return False
    key = bulletin.review_requested_at.isoformat()
    _record(bulletin, "bulletin.review_overdue", Event.REVIEW_OVERDUE, now=now, key=key)
    return True


@transaction.atomic
def reaffirm_bulletin(bulletin, *, by, now):
    """The issuer (or a supervisor over it) confirms an until-further-notice order still holds."""
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    reaffirmed = Bulletin.objects.filter(
        pk=bulletin.pk, status__in=Bulletin.LIVE_STATUSES, expires_at__isnull=True
    ).update(
        last_reaffirmed_at=now,
        last_reaffirmed_by=by,
        next_review_at=now + F("review_interval"),
        review_requested_at=None,
        review_overdue_at=None,
    )
    if not reaffirmed:
        raise ValidationError("Only an order in force until further notice can be re-affirmed.")
    bulletin.refresh_from_db()
    audit.record("bulletin.reaffirm", by=by, obj=bulletin, version=bulletin.version, now=now)
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin


@transaction.atomic
def schedule_lift(bulletin, *, by, now, at, reason):
    """Lift later ("at 06:00 tomorrow"): behaves like a fixed end that reads as lifted."""
    if not permissions.can_manage(by, bulletin):
        raise PermissionDenied
    if not reason.strip():
        raise ValidationError({"reason": "Say why you are lifting this bulletin."})
    if at <= now:
        raise ValidationError({"lift_at": "A scheduled lift must be in the future."})
    scheduled = (
        Bulletin.objects.filter(pk=bulletin.pk, status__in=Bulletin.LIVE_STATUSES)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), effective_at__lt=at)
        .update(expires_at=at, lifted_by=by, lift_reason=reason)
    )
    if not scheduled:
        raise ValidationError({"lift_at": "The lift must come after the bulletin takes effect."})
    bulletin.refresh_from_db()
    audit.record(
        "bulletin.schedule_lift",
        by=by,
        obj=bulletin,
        version=bulletin.version,
        now=now,
        lift_at=at.isoformat(),
        reason=reason,
    )
    changes.bulletins_changed(bulletin.agency_id)
    return bulletin

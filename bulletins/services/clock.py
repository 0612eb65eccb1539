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

from bulletins import feed_cache, notifications, permissions
from bulletins.models import Bulletin, NotificationEvent
from bulletins.services import chasing
from bulletins.services.authoring import add_recipients, write_recipients
from portal import audit


def review_grace():
    return timedelta(hours=settings.REVIEW_GRACE_HOURS)


def recorded_at(now):
    """When a transition is recorded: the sweep's `now`, or later if the sweep has been running
    a while (so the audit trail shows true lateness)."""
    return max(now, timezone.now())


def sweep(now):
    """One pass over everything due at `now`. Returns how many transitions it recorded."""
    return {
        "took_effect": _each(Bulletin.objects.filter(
            status=Bulletin.Status.SCHEDULED, effective_at__lte=now), take_effect, now),
        "ended": _each(Bulletin.objects.filter(
            status__in=Bulletin.LIVE_STATUSES, expires_at__lte=now), end_on_time, now),
        "review_requested": _each(Bulletin.objects.filter(
            status=Bulletin.Status.IN_FORCE, expires_at__isnull=True,
            next_review_at__lte=now, review_requested_at__isnull=True), request_review, now),
        "review_overdue": _each(Bulletin.objects.filter(
            status=Bulletin.Status.IN_FORCE, expires_at__isnull=True,
            review_requested_at__lte=now - review_grace(), review_overdue_at__isnull=True),
            flag_review_overdue, now),
        "reminders": chasing.chase(now),
        # A safety net: the task that writes recipient rows after publication was lost.
        "told": _each(Bulletin.objects.published().filter(
            recipients_written_at__isnull=True, published_at__lte=now), _write_recipients, now),
    }  # fmt: skip


def _write_recipients(pk, *, now):
    return write_recipients(pk, now=now) > 0


def _each(due, transition, now):
    return sum(transition(pk, now=now) for pk in due.order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def take_effect(pk, *, now):
    taken = Bulletin.objects.filter(
        pk=pk, status=Bulletin.Status.SCHEDULED, effective_at__lte=now
    ).update(status=Bulletin.Status.IN_FORCE)
    if not taken:
        return False
    bulletin = Bulletin.objects.get(pk=pk)
    add_recipients(bulletin, bulletin.members(), now=now)
    audit.record(
        "bulletin.take_effect",
        obj=bulletin,
        version=bulletin.version,
        now=recorded_at(now),
        due_at=bulletin.effective_at.isoformat(),
    )
    notifications.queue_event(
        bulletin, NotificationEvent.Event.PUBLISHED, now=now, key=f"v{bulletin.version}"
    )
    feed_cache.bulletins_changed()
    return True


@transaction.atomic
def end_on_time(pk, *, now):
    """A fixed term ran out (or a scheduled lift came due). Re-checked against the row as it is
    at the UPDATE, so an extension committed meanwhile wins."""
    ended = Bulletin.objects.filter(
        pk=pk, status__in=Bulletin.LIVE_STATUSES, expires_at__lte=now
    ).update(
        status=Case(
            When(lifted_by__isnull=False, then=Value(Bulletin.Status.LIFTED)),
            default=Value(Bulletin.Status.EXPIRED),
        ),
        ended_at=F("expires_at"),
    )
    if not ended:
        return False
    bulletin = Bulletin.objects.get(pk=pk)
    lifted = bulletin.status == Bulletin.Status.LIFTED
    audit.record(
        "bulletin.lift" if lifted else "bulletin.expire",
        obj=bulletin,
        version=bulletin.version,
        now=recorded_at(now),
        due_at=bulletin.expires_at.isoformat(),
    )
    event = NotificationEvent.Event.LIFTED if lifted else NotificationEvent.Event.ENDED
    notifications.queue_event(bulletin, event, now=now)
    feed_cache.bulletins_changed()
    return True


@transaction.atomic
def request_review(pk, *, now):
    requested = Bulletin.objects.filter(
        pk=pk, status=Bulletin.Status.IN_FORCE, expires_at__isnull=True,
        next_review_at__lte=now, review_requested_at__isnull=True,
    ).update(review_requested_at=now)  # fmt: skip
    if not requested:
        return False
    bulletin = Bulletin.objects.get(pk=pk)
    audit.record("bulletin.review_requested", obj=bulletin, version=bulletin.version, now=now)
    notifications.queue_event(
        bulletin, NotificationEvent.Event.REVIEW, now=now, key=now.isoformat()
    )
    feed_cache.bulletins_changed()
    return True


@transaction.atomic
def flag_review_overdue(pk, *, now):
    flagged = Bulletin.objects.filter(
        pk=pk, status=Bulletin.Status.IN_FORCE, expires_at__isnull=True,
        review_requested_at__lte=now - review_grace(), review_overdue_at__isnull=True,
    ).update(review_overdue_at=now)  # fmt: skip
    if not flagged:
        return False
    bulletin = Bulletin.objects.get(pk=pk)
    audit.record("bulletin.review_overdue", obj=bulletin, version=bulletin.version, now=now)
    notifications.queue_event(
        bulletin,
        NotificationEvent.Event.REVIEW_OVERDUE,
        now=now,
        key=bulletin.review_requested_at.isoformat(),
    )
    feed_cache.bulletins_changed()
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
    feed_cache.bulletins_changed()
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
    feed_cache.bulletins_changed()
    return bulletin

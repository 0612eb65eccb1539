"""Chasing unacknowledged Orders: remind the person, then escalate up the chain of command.

Step 0 reminds the person once the priority's delay has passed since the current material
version took effect; step 1 tells the supervisors of the person's unit one delay later, step 2
the supervisors of the unit above, and so on up to the agency. Each step is written once per
person and version by a set-based INSERT ... SELECT guarded by a unique constraint, so the sweep
can run twice or late. Acknowledging, the bulletin ending, or going on leave stops the chase.
Someone told while off duty is reminded one delay after their next tour starts
(`portal.tours.told_off_duty_waiting`; off with CHASE_OFF_DUTY).
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import BigIntegerField, Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Greatest, Length, Substr
from django.utils import timezone

from bulletins import notifications, permissions
from bulletins.models import Bulletin, BulletinVersion, NotificationEvent, Recipient, Reminder
from portal import audit, database, tours
from portal.models import AuditEvent, Unit
from portal.scope import scope_root

MANUAL_REMINDER_INTERVAL = timedelta(minutes=15)
AUDITED_PEOPLE = 1000  # people named by id in the audit event of one sweep's batch


def delay_for(priority):
    return timedelta(minutes=settings.REMINDER_DELAY_MINUTES[int(priority)])


def chased(now):
    """Recipients whose obligation is open: an Order in force, not acknowledged, not on leave."""
    return (
        Recipient.objects.filter(
            bulletin__kind=Bulletin.Kind.ORDER,
            bulletin__status__in=Bulletin.LIVE_STATUSES,
            bulletin__effective_at__lte=now,
            user__is_active=True,
            user__is_on_leave=False,
        )
        .filter(Q(bulletin__expires_at__isnull=True) | Q(bulletin__expires_at__gt=now))
        .filter(
            Q(acknowledged_version__isnull=True)
            | Q(acknowledged_version__lt=F("bulletin__ack_version"))
        )
    )


def _steps_taken(step, **filters):
    return Reminder.objects.filter(
        recipient=OuterRef("pk"),
        version=OuterRef("bulletin__ack_version"),
        step=step,
        is_manual=False,
        **filters,
    )


def _waiting_for_tour(due, priority, now, owners):
    """`due` without the people told while off duty whose next tour has not started
    `delay_for(priority)` ago (unless CHASE_OFF_DUTY): told = added to the audience, the
    bulletin taking effect, or its current version (a material amendment), whichever is later."""
    if settings.CHASE_OFF_DUTY or not owners:
        return due
    held = tours.told_off_duty_waiting(now, delay_for(priority), owners)
    if held is None:
        return due
    version_at = BulletinVersion.objects.filter(
        bulletin=OuterRef("bulletin"), number=OuterRef("bulletin__ack_version")
    ).values("created_at")[:1]
    told_at = Greatest("added_at", "bulletin__effective_at", Subquery(version_at))
    return due.alias(told_at=told_at).exclude(held)


def _due(step, priority, now, bulletin_ids, owners=None):
    cutoff = now - delay_for(priority)
    due = (
        chased(now)
        .filter(bulletin_id__in=bulletin_ids, bulletin__priority=priority)
        .exclude(Exists(_steps_taken(step)))
    )
    if step == 0:
        version_in_effect = BulletinVersion.objects.filter(
            bulletin=OuterRef("bulletin"),
            number=OuterRef("bulletin__ack_version"),
            created_at__lte=cutoff,
        )
        due = due.filter(Exists(version_in_effect), bulletin__effective_at__lte=cutoff)
        return _waiting_for_tour(due, priority, now, owners)
    return due.filter(Exists(_steps_taken(step - 1, created_at__lte=cutoff)), unit__depth__gte=step)


def _escalation_unit(step):
    """The unit whose supervisors hear of step `step`: the person's unit, then each one up."""
    if step == 0:
        return Cast(Value(None), BigIntegerField())
    keep = Length(OuterRef("unit__path")) - (step - 1) * Unit.steplen
    return Subquery(
        Unit.objects.filter(path=Substr(OuterRef("unit__path"), 1, keep)).values("pk")[:1]
    )


def _insert_reminders(recipients, *, step, unit, now, sent_by=None):
    """INSERT ... SELECT one Reminder per recipient row of `recipients` (no Python loop)."""
    is_manual = sent_by is not None
    rows = recipients.annotate(
        r_recipient=F("pk"),
        r_version=F("bulletin__ack_version"),
        r_step=Value(step),
        r_unit=unit,
        r_manual=Value(is_manual),
        r_sent_by=Cast(Value(sent_by.pk if is_manual else None), BigIntegerField()),
        r_created=Value(now, output_field=Reminder._meta.get_field("created_at")),
    ).values_list(
        "r_recipient", "r_version", "r_step", "r_unit", "r_manual", "r_sent_by", "r_created"
    )
    return database.insert_from(
        Reminder,
        ["recipient_id", "version", "step", "unit_id", "is_manual", "sent_by_id", "created_at"],
        rows,
        on_conflict="" if is_manual else "(recipient_id, version, step) WHERE NOT is_manual",
    )


@transaction.atomic
def chase(now):
    """Write every reminder and escalation step due at `now` and queue their messages.

    The Orders in force are found first (a handful): each statement then reads only their
    recipient rows through the (bulletin, ...) indexes, and a sweep with nothing in force costs
    one small query instead of a scan of every recipient row ever written."""
    in_force = Bulletin.objects.in_force(now).filter(kind=Bulletin.Kind.ORDER)
    by_priority = {}
    for pk, priority in in_force.values_list("pk", "priority"):
        by_priority.setdefault(priority, []).append(pk)
    written = 0
    owners = tours.tour_owners() if by_priority and not settings.CHASE_OFF_DUTY else None
    for step in range(settings.ESCALATION_MAX_STEPS + 1):
        for priority, bulletin_ids in by_priority.items():
            due = _due(step, priority, now, bulletin_ids, owners)
            written += _insert_reminders(due, step=step, unit=_escalation_unit(step), now=now)
    if written:
        _queue_messages(now)
    return written


def _queue_messages(now):
    """One outbox event and one audit event per bulletin and step written at `now`: the audit
    event says how many people were reminded (or whose supervisors were told) and who, by id
    (the first AUDITED_PEOPLE; the reminder rows hold them all), and for an escalation which
    units' supervisors heard of it."""
    written = Reminder.objects.filter(created_at=now, is_manual=False)
    batches = list(
        written.values("recipient__bulletin_id", "version", "step")
        .annotate(people=Count("pk"))
        .values_list("recipient__bulletin_id", "version", "step", "people")
        .order_by("recipient__bulletin_id", "step")
    )
    bulletins = Bulletin.objects.in_bulk({bulletin_id for bulletin_id, *_ in batches})
    for bulletin_id, version, step, people in batches:
        bulletin = bulletins[bulletin_id]
        event = NotificationEvent.Event.ESCALATION if step else NotificationEvent.Event.REMINDER
        notifications.queue_event(
            bulletin,
            event,
            now=now,
            key=f"v{version}:step{step}:{now.isoformat()}",
            detail={"version": version, "step": step, "at": now.isoformat()},
        )
        batch = written.filter(recipient__bulletin_id=bulletin_id, version=version, step=step)
        ids = batch.order_by("recipient__user_id").values_list("recipient__user_id", flat=True)
        user_ids = list(ids[:AUDITED_PEOPLE])
        detail = {"step": step, "people": people, "user_ids": user_ids,
                  "more_people": people - len(user_ids)}  # fmt: skip
        if step:
            detail["unit_ids"] = sorted(
                batch.order_by().values_list("unit_id", flat=True).distinct()
            )
        action = "bulletin.escalation" if step else "bulletin.reminder"
        audit.record(action, obj=bulletin, version=version, now=now, **detail)


def reminder_scope(user):
    """Whose people a manual reminder by `user` reaches, as the audit trail records it: the root
    of their scope ("all" for a superuser). The 15-minute limit is per bulletin and per scope, so
    the sergeants of two precincts each remind their own, and a second supervisor of the same
    precinct does not remind the same people again minutes later."""
    if user.is_superuser:
        return "all"
    root = scope_root(user)
    return root.pk if root is not None else None


def last_manual_reminder(bulletin, user):
    """When someone last reminded, by hand, the people of `user`'s scope of `bulletin` (read
    from the audit trail, indexed by object, action and time, rather than from its reminder
    rows)."""
    return (
        AuditEvent.objects.filter(
            object_type=bulletin._meta.label_lower,
            object_id=str(bulletin.pk),
            action="bulletin.manual_reminder",
            detail__people__gt=0,
            detail__scope=reminder_scope(user),
        )
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )


def next_manual_reminder_at(bulletin, user, now):
    """When `user` may next remind people of `bulletin` by hand: None if they may now."""
    last = last_manual_reminder(bulletin, user)
    if last is None or now - last >= MANUAL_REMINDER_INTERVAL:
        return None
    return last + MANUAL_REMINDER_INTERVAL


@transaction.atomic
def send_manual_reminder(bulletin, *, by, now):
    """Remind everyone outstanding in `by`'s scope: anyone who may follow the bulletin's
    coverage may, at most once per 15 minutes per bulletin and scope (`reminder_scope`)."""
    if not permissions.can_remind(by, bulletin):
        raise PermissionDenied
    Bulletin.objects.select_for_update().get(pk=bulletin.pk)
    next_at = next_manual_reminder_at(bulletin, by, now)
    if next_at is not None:
        local = timezone.localtime(next_at)
        raise ValidationError(
            f"A reminder was sent recently. You can send the next reminder at {local:%H:%M}."
        )
    outstanding = permissions.recipients_in_scope(
        by, chased(now).filter(bulletin=bulletin), bulletin=bulletin
    )
    count = _insert_reminders(outstanding, step=0, unit=_escalation_unit(0), now=now, sent_by=by)
    audit.record("bulletin.manual_reminder", by=by, obj=bulletin, version=bulletin.version,
                 now=now, people=count, scope=reminder_scope(by))  # fmt: skip
    if count:
        notifications.queue_event(
            bulletin,
            NotificationEvent.Event.REMINDER,
            now=now,
            key=f"manual:{reminder_scope(by)}:{now.isoformat()}",
            detail={"version": bulletin.ack_version, "step": 0, "at": now.isoformat(),
                    "manual": True},
        )  # fmt: skip
    return count

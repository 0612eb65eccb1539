"""Email notifications through an outbox.

A transition writes one NotificationEvent in its own transaction. After commit a Celery task
fans the event out - one INSERT ... SELECT of a Notification row per person, unique per person
and event - and sends them in batches. Each row is marked sent as soon as its message is handed
over, so a retry after a failure sends only what was not sent, and nothing is sent twice.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import F, Q, Subquery, Value
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone

from bulletins import corrections, permissions
from bulletins.models import (
    Bulletin,
    BulletinVersion,
    Notification,
    NotificationEvent,
    Recipient,
    Reminder,
    Response,
)
from portal import database
from portal.celery import queue_after_commit
from portal.local_time import zone_name
from portal.models import Unit, User

log = logging.getLogger(__name__)

SEND_BATCH_SIZE = 200
Event = NotificationEvent.Event
TO_RECIPIENTS = {Event.PUBLISHED, Event.AMENDED, Event.LIFTED, Event.ENDED}
# Told of a correction: those who already acknowledged the text (or, when there is nothing to
# acknowledge, opened it).
TO_READERS = {Event.CORRECTED}
# Of one "cannot comply" answer (detail["response"]): `answer_addressees`.
ABOUT_AN_ANSWER = {
    Event.CANNOT_COMPLY, Event.CANNOT_COMPLY_ESCALATED, Event.CANNOT_COMPLY_RESOLVED
}  # fmt: skip


def is_urgent(bulletin):
    """Urgent orders are emailed whatever the person's preference."""
    return bulletin.kind == Bulletin.Kind.ORDER and bulletin.priority == Bulletin.Priority.IMMEDIATE


def announces(bulletin):
    """Orders and "Officer safety - immediate" bulletins are announced by email."""
    return bulletin.kind == Bulletin.Kind.ORDER or bulletin.priority == Bulletin.Priority.IMMEDIATE


def queue_event(bulletin, event, *, now, key="", detail=None):
    """Write the outbox row for `event` (once per key) and deliver it after commit."""
    if event in TO_RECIPIENTS | TO_READERS and not announces(bulletin):
        return None
    outbox = NotificationEvent(
        bulletin=bulletin, event=event, key=key, version=bulletin.version,
        detail=detail or {}, created_at=now,
    )  # fmt: skip
    if _insert_once(outbox):
        deliver_after_commit(outbox.pk)
        return outbox
    return NotificationEvent.objects.get(bulletin=bulletin, event=event, key=key)


def _insert_once(outbox):
    """INSERT the outbox row unless its (bulletin, event, key) is there already: one statement,
    where get_or_create takes a read, a savepoint and an insert. True if it was written."""
    fields = [field for field in NotificationEvent._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    values = [
        field.get_db_prep_save(getattr(outbox, field.attname), connection) for field in fields
    ]
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "  # noqa: S608
            "ON CONFLICT (bulletin_id, event, key) DO NOTHING RETURNING id",
            values,
        )
        row = cursor.fetchone()
    if row is None:
        return False
    outbox.pk = row[0]
    outbox._state.adding = False
    return True


def queue_correction(bulletin, *, by, now):
    """Tell those who already acknowledged that the version just made by a non-material
    amendment corrects or extends what they acknowledged: once per version."""
    previous = BulletinVersion.objects.get(bulletin=bulletin, number=bulletin.version - 1)
    changed = [
        name
        for name in corrections.TEXT_FIELDS
        if getattr(previous, name) != getattr(bulletin, name)
    ]
    if previous.expires_at != bulletin.expires_at:
        changed.append("expires_at")
    if not changed:
        return None
    words = []
    for name in corrections.TEXT_FIELDS:
        words += corrections.changed_words(getattr(previous, name), getattr(bulletin, name)) or []
    detail = {
        "changed": changed,
        "words": words,
        "by": by.pk,
        "ack_version": bulletin.ack_version,
        "expires_at": bulletin.expires_at and bulletin.expires_at.isoformat(),
        "previous_expires_at": previous.expires_at and previous.expires_at.isoformat(),
    }
    key = f"v{bulletin.version}"
    return queue_event(bulletin, Event.CORRECTED, now=now, key=key, detail=detail)


def _local(moment):
    return dateformat.format(timezone.localtime(moment), "D d M H:i")


def correction_headline(detail):
    """ "Corrected", "Extended to Mon 07 Dec 18:00", "Corrected and now ends ...": what a
    correction did, in agency time."""
    changed = detail.get("changed", [])
    headline = "Corrected" if set(changed) & set(corrections.TEXT_FIELDS) else ""
    if "expires_at" in changed:
        end, previous = (
            detail.get(name) and datetime.fromisoformat(detail[name])
            for name in ("expires_at", "previous_expires_at")
        )
        if end is None:
            moved = "now until further notice"
        elif previous is not None and end > previous:
            moved = f"extended to {_local(end)}"
        else:
            moved = f"now ends {_local(end)}"
        headline = f"{headline} and {moved}" if headline else moved[0].upper() + moved[1:]
    return headline


def deliver_after_commit(event_id):
    """Fan out and send outbox event `event_id` once the transaction commits."""
    queue_after_commit("bulletins.tasks.deliver_event_task", event_id)


def addressees(outbox):
    """Who receives one event, as a queryset of users."""
    bulletin = outbox.bulletin
    if outbox.event in TO_RECIPIENTS:
        told = Recipient.objects.filter(bulletin=bulletin).values("user_id")
        people = User.objects.filter(pk__in=told, is_active=True).order_by()
        return people if is_urgent(bulletin) else people.filter(wants_email=True)
    if outbox.event in TO_READERS:
        return readers(outbox)
    if outbox.event == Event.REVIEW:
        return reviewers(bulletin)
    if outbox.event == Event.REVIEW_OVERDUE:
        return overseers(bulletin)
    if outbox.event == Event.CONFLICT:  # told of a lower order on its topic: the issuer
        return reviewers(bulletin)
    if outbox.event in ABOUT_AN_ANSWER:
        return answer_addressees(outbox)
    if outbox.event in (Event.APPROVAL_REQUESTED, Event.EMERGENCY):
        return permissions.approvers(bulletin)
    if outbox.event in (Event.SENT_BACK, Event.APPROVED):  # the author, or who proposed it
        to = outbox.detail.get("to", bulletin.issued_by_id)
        return User.objects.filter(pk=to, is_active=True)
    if outbox.event == Event.EMERGENCY_LATE:
        return late_reviewers(outbox)
    steps = reminder_steps(outbox)
    if outbox.event == Event.REMINDER:
        return User.objects.filter(pk__in=steps.values("recipient__user_id"), is_active=True)
    if outbox.event == Event.ESCALATION:
        return User.objects.filter(
            role__in=[User.Role.SUPERVISOR, User.Role.ADMIN],
            unit_id__in=steps.values("unit_id"),
            is_active=True,
        )
    return User.objects.none()


def answer_addressees(outbox):
    """Who hears of a "cannot comply", whatever their email preference (a safety failure): the
    supervisors of the person's unit, or of the nearest unit above that has some; at each
    escalation step, those of the step's unit; once resolved, the person."""
    response = Response.objects.select_related("unit").get(pk=outbox.detail["response"])
    if outbox.event == Event.CANNOT_COMPLY_RESOLVED:
        return User.objects.filter(pk=response.user_id, is_active=True)
    chain = User.objects.filter(
        role__in=[User.Role.SUPERVISOR, User.Role.ADMIN], is_active=True
    ).order_by()
    if outbox.event == Event.CANNOT_COMPLY_ESCALATED:
        return chain.filter(unit_id=outbox.detail.get("unit"))
    if response.unit is None:
        return chain.none()
    path = response.unit.path
    above = [path[:end] for end in range(len(path), 0, -Unit.steplen)]
    nearest = chain.filter(unit__path__in=above).order_by("-unit__depth").values("unit_id")[:1]
    return chain.filter(unit_id=Subquery(nearest))


def late_reviewers(outbox):
    """Told that an emergency publication was not reviewed in time: the supervisors of the
    step's unit; at the agency, its admins too."""
    unit = Unit.objects.get(pk=outbox.detail["unit"])
    people = Q(role=User.Role.SUPERVISOR, unit=unit)
    if unit.is_root():
        people |= Q(role=User.Role.ADMIN, unit__path__startswith=unit.path)
    return User.objects.filter(people, is_active=True).order_by()


def readers(outbox):
    """Who already acknowledged the version `outbox` speaks of (for a bulletin that is not
    acknowledged: who opened it), but the person who made the change."""
    bulletin = outbox.bulletin
    rows = Recipient.objects.filter(bulletin=bulletin)
    if bulletin.requires_acknowledgement:
        since = outbox.detail.get("ack_version", bulletin.ack_version)
        rows = rows.filter(acknowledged_version__gte=since)
    else:
        rows = rows.filter(first_opened_at__isnull=False)
    people = (
        User.objects.filter(pk__in=rows.values("user_id"), is_active=True)
        .exclude(pk=outbox.detail.get("by"))
        .order_by()
    )
    return people if is_urgent(bulletin) else people.filter(wants_email=True)


def reminder_steps(outbox):
    """The Reminder rows a reminder or escalation event speaks for."""
    detail = outbox.detail
    return Reminder.objects.filter(
        recipient__bulletin_id=outbox.bulletin_id,
        version=detail.get("version"),
        step=detail.get("step"),
        created_at=datetime.fromisoformat(detail["at"]) if "at" in detail else None,
        is_manual=detail.get("manual", False),
    )


def escalated_people(outbox, supervisor):
    """The people one escalation message lists for one supervisor: those of their unit."""
    steps = reminder_steps(outbox).filter(unit_id=supervisor.unit_id)
    return list(
        User.objects.filter(pk__in=steps.values("recipient__user_id"))
        .select_related("unit")
        .order_by("unit__path", "name")
    )


@transaction.atomic
def fan_out(outbox, *, now=None):
    """One Notification row per addressee, in one statement. Idempotent.

    Waits (returns None, the event stays pending) while the bulletin's recipient rows are
    still being written: `authoring.write_recipients` delivers it once they are."""
    waits = outbox.event in TO_RECIPIENTS | TO_READERS
    if waits and outbox.bulletin.recipients_written_at is None:
        return None
    created_at = Notification._meta.get_field("created_at")
    rows = (
        addressees(outbox)
        .annotate(
            n_event=Value(outbox.pk),
            n_user=F("id"),
            n_created=Value(now or timezone.now(), output_field=created_at),
            n_attempts=Value(0),
            n_error=Value(""),
        )
        .values_list("n_event", "n_user", "n_created", "n_attempts", "n_error")
    )
    created = database.insert_from(
        Notification,
        ["event_id", "user_id", "created_at", "attempts", "last_error"],
        rows,
        on_conflict="(event_id, user_id)",
    )
    NotificationEvent.objects.filter(pk=outbox.pk, fanned_out_at__isnull=True).update(
        fanned_out_at=now or timezone.now()
    )
    return created


def reviewers(bulletin):
    """Who is asked to re-affirm: the issuer, or if they are gone, their unit's supervisors."""
    issuer = bulletin.issued_by
    if issuer.is_active:
        return User.objects.filter(pk=issuer.pk)
    return User.objects.filter(unit_id=issuer.unit_id, role=User.Role.SUPERVISOR, is_active=True)


def overseers(bulletin):
    """The issuer's supervisors (up the unit tree) and the agency's admins."""
    issuer = bulletin.issued_by
    above = []
    if issuer.unit_id:
        path = issuer.unit.path
        above = [path[:end] for end in range(Unit.steplen, len(path), Unit.steplen)]
        if issuer.role == User.Role.OFFICER:
            above.append(path)
    return User.objects.filter(
        Q(role=User.Role.SUPERVISOR, unit__path__in=above)
        | Q(role=User.Role.ADMIN, unit__path__startswith=bulletin.agency.path),
        is_active=True,
    ).exclude(pk=issuer.pk)


EXERCISE_PREFIX = "EXERCISE - "


def _message(notification, shared=None):
    """The e-mail of one notification. `shared` ({outbox id: context}) keeps what every message
    of one event shows, so a batch reads and works it out once per event, not per person."""
    outbox = notification.event
    bulletin = outbox.bulletin
    shared = {} if shared is None else shared
    if outbox.pk not in shared:
        shared[outbox.pk] = _event_context(outbox)
    context = {**shared[outbox.pk], "person": notification.user}
    if outbox.event == Event.ESCALATION:
        context["people"] = escalated_people(outbox, notification.user)
    base = f"emails/{outbox.event}"
    subject = render_to_string(f"{base}_subject.txt", context)
    if bulletin.is_exercise:  # every subject, whatever the event
        subject = f"{EXERCISE_PREFIX}{subject}"
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"{base}_message.txt", context),
        to=[notification.user.email],
    )
    message.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    return message


def _event_context(outbox):
    """What every message of one event shows, whoever it goes to."""
    bulletin = outbox.bulletin
    context = {
        "bulletin": bulletin,
        "event": outbox.get_event_display(),
        "detail": outbox.detail,
        "url": settings.SITE_URL.rstrip("/") + reverse("bulletins:detail", args=[bulletin.pk]),
        "portal_name": settings.PORTAL_NAME,
        "zone": zone_name(),
    }
    if outbox.event in ABOUT_AN_ANSWER:
        context.update(answer_context(outbox))
    if outbox.event in (Event.REMINDER, Event.ESCALATION):
        context["changed_at"] = changed_at(outbox)
    if outbox.event == Event.CORRECTED:
        context["headline"] = correction_headline(outbox.detail)
    return context


def answer_context(outbox):
    """What a message about a "cannot comply" shows: the answer, its escalation step, the pages
    where it is seen and resolved."""
    response = Response.objects.select_related("user", "unit", "resolved_by").get(
        pk=outbox.detail["response"]
    )
    site = settings.SITE_URL.rstrip("/")
    return {
        "response": response,
        "step": outbox.detail.get("step"),
        "coverage_url": site + reverse("bulletins:coverage", args=[outbox.bulletin_id]),
        "resolve_url": site + reverse("bulletins:resolve", args=[response.pk]),
    }


def changed_at(outbox):
    """When the version a reminder or escalation chases was made by a material amendment
    (None for the first version): the message then asks for the new version."""
    number = outbox.detail.get("version") or 1
    if number <= 1:
        return None
    version = (
        BulletinVersion.objects.filter(bulletin_id=outbox.bulletin_id, number=number)
        .values("created_at", "is_material")
        .first()
    )
    return version["created_at"] if version and version["is_material"] else None


def send_pending(*, batch_size=SEND_BATCH_SIZE, now=None):
    """Send one batch of queued notifications. Returns how many were sent.

    Rows are claimed with SKIP LOCKED (two workers never take the same row; SQLite, which has
    no row locks, runs one worker) and marked sent, in the claiming transaction, once handed
    over; on an SMTP failure the marks of those handed over so far are committed before the
    error is raised for the task to retry.
    """
    failure, sent_ids, failed_id = None, [], None
    with transaction.atomic():
        batch = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(sent_at__isnull=True)
            .select_related("event__bulletin", "user")
            .order_by("created_at", "id")[:batch_size]
        )
        if not batch:
            return 0
        mailer, shared = get_connection(), {}
        try:
            mailer.open()
            for notification in batch:
                try:
                    mailer.send_messages([_message(notification, shared)])
                except Exception as error:  # noqa: BLE001 - recorded, then raised after commit
                    failure, failed_id = error, notification.pk
                    break
                sent_ids.append(notification.pk)
        finally:
            mailer.close()
            # One UPDATE for the batch, in the claiming transaction: what one per message
            # would commit, in one round trip.
            Notification.objects.filter(pk__in=sent_ids).update(
                sent_at=now or timezone.now(), attempts=F("attempts") + 1
            )
            if failed_id is not None:
                Notification.objects.filter(pk=failed_id).update(
                    attempts=F("attempts") + 1, last_error=str(failure)[:300]
                )
    if failure is not None:
        raise failure
    return len(sent_ids)


def pending_events():
    return NotificationEvent.objects.filter(fanned_out_at__isnull=True).order_by("created_at")

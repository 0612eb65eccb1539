"""Email notifications through an outbox.

Events write Notification rows in their own transaction (set-based, one row per person); a
Celery task sends them in batches after commit. The unique key per person and event means a
message is queued once, and each row is marked sent as soon as its message is handed over, so a
retry after a failure sends only what was not sent.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Bulletin, Notification, Recipient
from portal.models import Unit, User

log = logging.getLogger(__name__)

SEND_BATCH_SIZE = 200


def is_urgent(bulletin):
    """Urgent orders are emailed whatever the person's preference."""
    return bulletin.kind == Bulletin.Kind.ORDER and bulletin.priority == Bulletin.Priority.IMMEDIATE


def announces(bulletin):
    """Orders and "Officer safety - immediate" bulletins are announced by email."""
    return bulletin.kind == Bulletin.Kind.ORDER or bulletin.priority == Bulletin.Priority.IMMEDIATE


def notify_recipients(bulletin, event, *, now, key="", only_outstanding=False):
    """Queue `event` for every person told of `bulletin` (one INSERT ... SELECT)."""
    if not announces(bulletin):
        return 0
    people = Recipient.objects.filter(bulletin=bulletin, user__is_active=True)
    if not is_urgent(bulletin):
        people = people.filter(user__wants_email=True)
    if only_outstanding:
        people = people.filter(
            Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=bulletin.ack_version)
        )
    return _insert(bulletin, event, people.values_list("user_id", flat=True), now=now, key=key)


def notify_people(bulletin, event, users, *, now, key=""):
    """Queue `event` for a few named people (reviewers, supervisors)."""
    return _insert(bulletin, event, users.values_list("id", flat=True), now=now, key=key)


def _insert(bulletin, event, user_ids, *, now, key):
    created_at = Notification._meta.get_field("created_at")
    rows = (
        User.objects.filter(pk__in=user_ids)
        .annotate(
            n_bulletin=Value(bulletin.pk),
            n_user=F("id"),
            n_event=Value(str(event)),
            n_key=Value(key),
            n_version=Value(bulletin.version),
            n_created=Value(now, output_field=created_at),
        )
        .values_list("n_bulletin", "n_user", "n_event", "n_key", "n_version", "n_created")
    )
    select_sql, params = rows.query.get_compiler(connection=connection).as_sql()
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bulletin_id, user_id, event, key, version, created_at, "  # noqa: S608
            "detail, attempts, last_error) "
            f"SELECT n.*, '{{}}', 0, '' FROM ({select_sql}) AS n "
            "ON CONFLICT (user_id, bulletin_id, event, key) DO NOTHING",
            params,
        )
        queued = cursor.rowcount
    if queued:
        from bulletins.tasks import send_notifications_task

        send_notifications_task.delay_on_commit()
    return queued


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


def _message(notification):
    bulletin = notification.bulletin
    context = {
        "bulletin": bulletin,
        "person": notification.user,
        "event": notification.get_event_display(),
        "notification": notification,
        "url": settings.SITE_URL.rstrip("/") + reverse("bulletins:detail", args=[bulletin.pk]),
        "portal_name": settings.PORTAL_NAME,
    }
    base = f"emails/{notification.event}"
    subject = render_to_string(f"{base}_subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"{base}_message.txt", context),
        to=[notification.user.email],
    )
    message.attach_alternative(render_to_string(f"{base}.html", context), "text/html")
    return message


def send_pending(*, batch_size=SEND_BATCH_SIZE, now=None):
    """Send one batch of queued notifications. Returns how many were sent.

    Rows are claimed with SKIP LOCKED (two workers never take the same row) and marked sent one
    by one, so an SMTP failure part-way leaves only the unsent for the retry.
    """
    sent, failure = 0, None
    with transaction.atomic():
        batch = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(sent_at__isnull=True)
            .select_related("bulletin", "user")
            .order_by("created_at", "id")[:batch_size]
        )
        if not batch:
            return 0
        mailer = get_connection()
        try:
            mailer.open()
            for notification in batch:
                try:
                    mailer.send_messages([_message(notification)])
                except Exception as error:  # noqa: BLE001 - recorded, then raised after commit
                    Notification.objects.filter(pk=notification.pk).update(
                        attempts=F("attempts") + 1, last_error=str(error)[:300]
                    )
                    failure = error
                    break
                Notification.objects.filter(pk=notification.pk).update(
                    sent_at=now or timezone.now(), attempts=F("attempts") + 1
                )
                sent += 1
        finally:
            mailer.close()
    if failure is not None:
        raise failure
    return sent

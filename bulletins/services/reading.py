"""What officers do with a bulletin: open it, acknowledge it. Never touches Celery.

Both are single conditional writes keyed on (person, version), so a double click or two tabs at
once record one receipt.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce

from bulletins.caching import changes
from bulletins.models import Bulletin, BulletinVersion, Receipt, Recipient
from portal import audit, database

ACKNOWLEDGEMENT_STATEMENT = "I have read and understand this order."
# What the receipt of someone who wrote the version says: they count as acknowledged from the
# moment it was published (`acknowledge_as_author`), recorded as such, not as a signature.
ISSUED_STATEMENT = "Issued this order: counted as acknowledged when it was published."
AMENDED_STATEMENT = "Made this change to the order: counted as acknowledged when it was published."
AS_AUTHOR = "as-author"  # the receipt's auth_method: no sign-in signed it, the publication did


def _ensure_recipient(bulletin, user, now):
    """A person reached by the audience rule after publication (moved in) is told now."""
    Recipient.objects.bulk_create(
        [Recipient(bulletin=bulletin, user=user, unit_id=user.unit_id, added_at=now)],
        ignore_conflicts=True,
    )


@transaction.atomic
def record_open(bulletin, version, *, user, now):
    """Records the first time `user` opened `version`. Returns True when this call did."""
    _ensure_recipient(bulletin, user, now)
    # One statement that says whether it wrote the row (bulk_create(ignore_conflicts=True)
    # returns its objects either way); a concurrent first open meets the unique key.
    with connection.cursor() as cursor:
        cursor.execute(
            _OPEN_SQL.format(receipt=Receipt._meta.db_table),
            [bulletin.pk, version.pk, user.pk, connection.ops.adapt_datetimefield_value(now)],
        )
        created = cursor.fetchone() is not None
    first = Recipient.objects.filter(
        bulletin=bulletin, user=user, first_opened_at__isnull=True
    ).update(first_opened_at=now)
    # A first open (of someone just told, too) changes the bulletin's figures.
    changes.reader_changed(user, bulletin.pk if first else None)
    return created


def authentication_summary(request):
    """How the person signed in, as evidence: "api-token:<prefix>" for an API token, else the
    session's methods, e.g. "password+totp"."""
    from allauth.account.authentication import get_authentication_records

    token = getattr(request, "api_token", None)
    if token is not None:
        return f"api-token:{token.prefix}"
    methods = []
    for record in get_authentication_records(request):
        method = record.get("type") or record.get("method")
        if method and method not in methods:
            methods.append(method)
    return "+".join(methods) or "session"


def acknowledge(bulletin_id, *, user, version_number, now, request=None):
    """Acknowledge version `version_number` of bulletin `bulletin_id`, as the person was shown
    it. Returns True if this call recorded it, False if it was recorded before (idempotent).

    Raises Bulletin.DoesNotExist if the bulletin is not published or not addressed to `user`,
    and ValidationError saying why when it cannot be acknowledged (code "version" for a version
    that is None: not a number). Almost every call is a first acknowledgement of an Order in
    force by someone told: one statement records it; anything else takes the checked way, which
    finds out why and says so."""
    if version_number is not None and _acknowledge_at_once(
        bulletin_id, user=user, version_number=version_number, now=now, request=request
    ):
        changes.reader_changed(user, bulletin_id)
        return True
    bulletin = Bulletin.objects.published().get(pk=bulletin_id)
    if not bulletin.is_addressed_to(user):
        raise Bulletin.DoesNotExist
    if version_number is None:
        raise ValidationError("The version to acknowledge must be a number.", code="version")
    recorded = _acknowledge_checked(
        bulletin, user=user, version_number=version_number, now=now, request=request
    )
    if recorded:
        changes.reader_changed(user, bulletin.pk)
    return recorded


def _evidence(user, bulletin_id, version_number, now, request):
    """The receipt's evidence of how and from where, and the audit event of the acknowledgement:
    the same for both ways of acknowledging."""
    event = audit.new_event(
        "bulletin.acknowledge", by=user, version=version_number, now=now, request=request
    )
    # What `obj=bulletin` would set, without building a Bulletin for its id (a tenth of a
    # millisecond on the acknowledgement's path).
    event.object_type, event.object_id = Bulletin._meta.label_lower, str(bulletin_id)
    evidence = {
        "auth_method": authentication_summary(request) if request is not None else "",
        "ip": event.ip,
        "user_agent": event.user_agent,
    }
    return evidence, event


# The receipt of an acknowledgement: it completes a receipt the person's first open wrote, and
# never rewrites one already acknowledged. Shared by both ways of acknowledging.
_RECEIPT_COLUMNS = """(bulletin_id, version_id, user_id, opened_at, acknowledged_at, statement,
    content_hash, auth_method, ip, user_agent)"""
_RECEIPT_UPSERT = """
ON CONFLICT (user_id, version_id) DO UPDATE SET
    acknowledged_at = EXCLUDED.acknowledged_at,
    opened_at = COALESCE({receipt}.opened_at, EXCLUDED.opened_at),
    statement = EXCLUDED.statement,
    content_hash = EXCLUDED.content_hash,
    auth_method = EXCLUDED.auth_method,
    ip = EXCLUDED.ip,
    user_agent = EXCLUDED.user_agent
WHERE {receipt}.acknowledged_at IS NULL
"""
# The receipt of a first open (nothing acknowledged, no evidence of how yet).
_OPEN_SQL = (
    "INSERT INTO {receipt} " + _RECEIPT_COLUMNS
    + " VALUES (%s, %s, %s, %s, NULL, '', '', '', NULL, '')"
    + " ON CONFLICT (user_id, version_id) DO NOTHING RETURNING id"
)  # fmt: skip
_ACKNOWLEDGE_SQL = (
    "INSERT INTO {receipt} " + _RECEIPT_COLUMNS
    + " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" + _RECEIPT_UPSERT + "RETURNING id"
)  # fmt: skip


# Everything a first acknowledgement writes, in one statement (PostgreSQL): the receipt, the
# recipient's summary and the audit event (written by `audit.insert_each`, as `audit.record`
# writes it) commit together or not at all. It writes nothing unless the person was told, the
# bulletin is an Order in force and the version is one they may acknowledge, so a row means
# every check of `_acknowledge_checked` passed.
_ACKNOWLEDGE_AT_ONCE_SQL = (
    """
WITH target AS (
    SELECT b.id AS bulletin_id, b.agency_id, v.id AS version_id, v.content_hash
    FROM {bulletin} b
    JOIN {version} v ON v.bulletin_id = b.id AND v.number = %(version)s
    WHERE b.id = %(bulletin)s AND b.kind = %(order)s AND b.status = ANY(%(live)s)
      AND b.effective_at <= %(now)s AND (b.expires_at IS NULL OR b.expires_at > %(now)s)
      AND b.ack_version <= %(version)s AND %(version)s <= b.version
      AND b.agency_id = %(agency)s
      AND EXISTS (
          SELECT 1 FROM {recipient} r WHERE r.bulletin_id = b.id AND r.user_id = %(user)s
      )
), receipt AS (
    INSERT INTO {receipt} """
    + _RECEIPT_COLUMNS
    + """
    SELECT bulletin_id, version_id, %(user)s, %(now)s, %(now)s, %(statement)s, content_hash,
           %(auth_method)s, %(ip)s, %(user_agent)s
    FROM target"""
    + _RECEIPT_UPSERT
    + """    RETURNING 1
), told AS (
    UPDATE {recipient}
    SET acknowledged_version = %(version)s, acknowledged_at = %(now)s,
        first_opened_at = COALESCE(first_opened_at, %(now)s)
    WHERE bulletin_id = %(bulletin)s AND user_id = %(user)s
      AND (acknowledged_version IS NULL OR acknowledged_version < %(version)s)
      AND EXISTS (SELECT 1 FROM receipt)
), event AS (
    {event}
)
SELECT count(*) FROM receipt
"""
)
# Of the audit event, what the statement knows only per row of `target`.
_EVENT_FROM_TARGET = {
    "agency_id": "agency_id",
    "detail": "jsonb_build_object('content_hash', content_hash)",
}
_MAX_VERSION = 2**31 - 1


def _acknowledge_at_once(bulletin_id, *, user, version_number, now, request):
    """The common case as a single statement, without loading the bulletin. True if it recorded
    the acknowledgement; False means nothing was written and nothing was decided. Only on
    PostgreSQL; elsewhere always False."""
    if not database.is_postgresql() or not 0 < version_number <= _MAX_VERSION:
        return False
    evidence, event = _evidence(user, bulletin_id, version_number, now, request)
    event_sql, event_params = audit.insert_each(
        event, source="target WHERE EXISTS (SELECT 1 FROM receipt)", replace=_EVENT_FROM_TARGET
    )
    tables = {
        "bulletin": Bulletin._meta.db_table,
        "version": BulletinVersion._meta.db_table,
        "recipient": Recipient._meta.db_table,
        "receipt": Receipt._meta.db_table,
    }
    params = {
        "bulletin": bulletin_id,
        "version": version_number,
        "user": user.pk,
        "agency": user.agency_id,  # told, but moved to another agency since: not any more
        "order": Bulletin.Kind.ORDER.value,
        "live": [status.value for status in Bulletin.LIVE_STATUSES],
        "now": now,
        "statement": ACKNOWLEDGEMENT_STATEMENT,
        **evidence,
        **event_params,
    }
    with database.prepared_cursor() as cursor:
        cursor.execute(_ACKNOWLEDGE_AT_ONCE_SQL.format(event=event_sql, **tables), params)
        return cursor.fetchone()[0] == 1


@transaction.atomic
def _acknowledge_checked(bulletin, *, user, version_number, now, request):
    """Every other case, checked one by one: True if this call recorded the acknowledgement,
    False if it was already recorded; ValidationError saying why it cannot be."""
    if not bulletin.requires_acknowledgement:
        raise ValidationError("Only Orders are acknowledged.")
    if bulletin.state_at(now) != Bulletin.Status.IN_FORCE:
        raise ValidationError("This bulletin is no longer in force.")
    if not bulletin.ack_version <= version_number <= bulletin.version:
        raise ValidationError("This order has changed since you opened it. Read the new version.")
    version_id, content_hash = (
        BulletinVersion.objects.filter(bulletin=bulletin, number=version_number)
        .values_list("pk", "content_hash")
        .get()
    )
    if not Recipient.objects.filter(bulletin=bulletin, user=user).exists():
        _ensure_recipient(bulletin, user, now)  # moved in after publication: told now
    evidence, event = _evidence(user, bulletin.pk, version_number, now, request)
    with connection.cursor() as cursor:
        cursor.execute(
            _ACKNOWLEDGE_SQL.format(receipt=Receipt._meta.db_table),
            [
                bulletin.pk,
                version_id,
                user.pk,
                connection.ops.adapt_datetimefield_value(now),
                connection.ops.adapt_datetimefield_value(now),
                ACKNOWLEDGEMENT_STATEMENT,
                content_hash,
                evidence["auth_method"],
                connection.ops.adapt_ipaddressfield_value(evidence["ip"]),
                evidence["user_agent"],
            ],
        )
        if cursor.fetchone() is None:
            return False
    Recipient.objects.filter(bulletin=bulletin, user=user).filter(
        Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=version_number)
    ).update(
        acknowledged_version=version_number,
        acknowledged_at=now,
        first_opened_at=Coalesce("first_opened_at", now),
    )
    event.agency_id, event.detail = bulletin.agency_id, {"content_hash": content_hash}
    event.save(force_insert=True)
    return True


@transaction.atomic
def acknowledge_as_author(bulletin, *, person, now, statement=ISSUED_STATEMENT, at=None):
    """Count `person`, who wrote (or co-signed) the current material version of the Order
    `bulletin`, as having acknowledged it at `at` (its publication; by default `now`): a receipt
    saying so (`statement`, auth_method AS_AUTHOR), their recipient row acknowledged, and an
    audit event at `now`. Only if they were told (a recipient row: someone outside the audience
    is not asked to acknowledge; for a large audience the rows are written after commit, and
    `acknowledge_author_told_late` does it then). Returns True if this call recorded it."""
    if not bulletin.requires_acknowledgement or person is None:
        return False
    number = bulletin.ack_version
    told = Recipient.objects.filter(bulletin=bulletin, user=person).filter(
        Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=number)
    )
    if not told.exists():
        return False
    version_id, content_hash = (
        BulletinVersion.objects.filter(bulletin=bulletin, number=number)
        .values_list("pk", "content_hash")
        .get()
    )
    at = at or now
    when = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(
            _ACKNOWLEDGE_SQL.format(receipt=Receipt._meta.db_table),
            [bulletin.pk, version_id, person.pk, when, when, statement, content_hash, AS_AUTHOR,
             None, ""],
        )  # fmt: skip
        if cursor.fetchone() is None:
            return False
    told.update(
        acknowledged_version=number,
        acknowledged_at=at,
        first_opened_at=Coalesce("first_opened_at", at),
    )
    audit.record("bulletin.acknowledge", by=person, obj=bulletin, version=number, now=now,
                 content_hash=content_hash, as_author=True, statement=statement)  # fmt: skip
    changes.reader_changed(person, bulletin.pk)
    return True


def acknowledge_author_told_late(bulletin, *, now):
    """`acknowledge_as_author` for whoever wrote the current material version, once the
    recipient rows of a large audience are written (after the publishing transaction)."""
    author = (
        BulletinVersion.objects.filter(bulletin=bulletin, number=bulletin.ack_version)
        .select_related("created_by")
        .first()
    )
    if author is None or author.created_by is None:
        return False
    statement = ISSUED_STATEMENT if author.number == 1 else AMENDED_STATEMENT
    return acknowledge_as_author(
        bulletin, person=author.created_by, now=now, statement=statement, at=author.created_at
    )


def record_restricted_view(
    bulletin, *, user, request, version, now=None, action="bulletin.view_restricted", **detail
):
    """Audit that `user` was shown `version` of a restricted bulletin (or, with `action`,
    something of it, such as an attachment). Nothing for a bulletin that is not restricted."""
    if bulletin.is_restricted:
        audit.record(
            action, by=user, obj=bulletin, version=version, now=now, request=request, **detail
        )

"""What officers do with a bulletin: open it, acknowledge it. Never touches Celery.

Both are single conditional writes keyed on (person, version), so a double click or two tabs at
once record one receipt.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce

from bulletins import coverage_cache, feed_cache
from bulletins.models import Bulletin, BulletinVersion, Receipt, Recipient
from portal import audit
from portal.models import AuditEvent

ACKNOWLEDGEMENT_STATEMENT = "I have read and understand this order."


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
    if first:  # a first open (of someone just told, too) changes the bulletin's figures
        _reader_and_figures_changed(bulletin.pk, user)
    else:
        feed_cache.reader_changed(user)
    return created


def _reader_and_figures_changed(bulletin_id, user):
    """The person's feed and the bulletin's figures changed: both counters in one round trip."""
    feed_cache.bump_counter(feed_cache.reader_key(user), coverage_cache.recipients_key(bulletin_id))


def authentication_summary(request):
    """How the person signed in this session, e.g. "password+totp"."""
    from allauth.account.authentication import get_authentication_records

    methods = []
    for record in get_authentication_records(request):
        method = record.get("type") or record.get("method")
        if method and method not in methods:
            methods.append(method)
    return "+".join(methods) or "session"


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
# recipient's summary and the audit event commit together or not at all. It writes nothing
# unless the person was told, the bulletin is an Order in force and the version is one they may
# acknowledge, so a row means every check of `acknowledge_bulletin` passed.
_ACKNOWLEDGE_AT_ONCE_SQL = (
    """
WITH target AS (
    SELECT b.id AS bulletin_id, b.agency_id, v.id AS version_id, v.content_hash
    FROM {bulletin} b
    JOIN {version} v ON v.bulletin_id = b.id AND v.number = %(version)s
    WHERE b.id = %(bulletin)s AND b.kind = %(order)s AND b.status = ANY(%(live)s)
      AND b.effective_at <= %(now)s AND (b.expires_at IS NULL OR b.expires_at > %(now)s)
      AND b.ack_version <= %(version)s AND %(version)s <= b.version
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
    INSERT INTO {event} (at, actor_id, actor_label, action, object_type, object_id,
                         object_version, outcome, detail, agency_id, request_id, ip,
                         user_agent, prev_hash, hash)
    SELECT %(at)s, %(user)s, %(actor_label)s, %(action)s, %(object_type)s, %(object_id)s,
           %(version)s, %(outcome)s, jsonb_build_object('content_hash', content_hash),
           agency_id, %(request_id)s, %(ip)s, %(user_agent)s, '', ''
    FROM target
    WHERE EXISTS (SELECT 1 FROM receipt)
)
SELECT count(*) FROM receipt
"""
)
_MAX_VERSION = 2**31 - 1


def acknowledge_at_once(bulletin_id, *, user, version_number, now, auth_method="", request):
    """The common case - a first acknowledgement by someone told, of an Order in force - as a
    single statement, without loading the bulletin. True if it recorded the acknowledgement.

    False means nothing was written and nothing was decided: the caller goes on to
    `acknowledge_bulletin`, which finds out why (already acknowledged, no longer in force, not
    told yet, not addressed at all) and says so. Only on PostgreSQL; elsewhere always False."""
    if connection.vendor != "postgresql" or not 0 < version_number <= _MAX_VERSION:
        return False
    ip = audit.client_ip(request)
    user_agent = request.headers.get("user-agent", "")[:400]
    tables = {
        "bulletin": Bulletin._meta.db_table,
        "version": BulletinVersion._meta.db_table,
        "recipient": Recipient._meta.db_table,
        "receipt": Receipt._meta.db_table,
        "event": AuditEvent._meta.db_table,
    }
    params = {
        "bulletin": bulletin_id,
        "version": version_number,
        "user": user.pk,
        "order": Bulletin.Kind.ORDER.value,
        "live": [status.value for status in Bulletin.LIVE_STATUSES],
        "now": now,
        "statement": ACKNOWLEDGEMENT_STATEMENT,
        "auth_method": auth_method,
        "ip": connection.ops.adapt_ipaddressfield_value(ip),
        "user_agent": user_agent,
        "at": audit.to_utc_millisecond(now),
        "actor_label": user.email or "",
        "action": "bulletin.acknowledge",
        "object_type": Bulletin._meta.label_lower,
        "object_id": str(bulletin_id),
        "outcome": "success",
        "request_id": getattr(request, "request_id", "") or audit.current_request_id(),
    }
    with _prepared_cursor() as cursor:
        cursor.execute(_ACKNOWLEDGE_AT_ONCE_SQL.format(**tables), params)
        recorded = cursor.fetchone()[0] == 1
    if recorded:
        _reader_and_figures_changed(bulletin_id, user)
    return recorded


def _prepared_cursor():
    """A cursor that binds its parameters on the server (Django binds them in the client), in
    Django's wrapper. psycopg prepares such a statement once it has run `prepare_threshold`
    times on a connection (settings: 5, unless DATABASE_PREPARED_STATEMENTS is off), and
    connections are kept (CONN_MAX_AGE): the acknowledgement's statement, whose planning costs
    about as much as its execution, is then planned once per connection instead of once per request
    (about 1.25 ms -> 0.75 ms a call, measured in-process)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


@transaction.atomic
def acknowledge_bulletin(
    bulletin,
    *,
    user,
    version_number,
    now,
    auth_method="",
    ip=None,
    user_agent="",
    request=None,
):
    """Acknowledge the version the person was shown. Returns True if this call recorded it,
    False if it was already recorded (idempotent)."""
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
                auth_method,
                connection.ops.adapt_ipaddressfield_value(ip),
                user_agent[:400],
            ],
        )
        recorded = cursor.fetchone() is not None
    if not recorded:
        return False
    Recipient.objects.filter(bulletin=bulletin, user=user).filter(
        Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=version_number)
    ).update(
        acknowledged_version=version_number,
        acknowledged_at=now,
        first_opened_at=Coalesce("first_opened_at", now),
    )
    audit.record(
        "bulletin.acknowledge",
        by=user,
        obj=bulletin,
        version=version_number,
        now=now,
        request=request,
        content_hash=content_hash,
    )
    _reader_and_figures_changed(bulletin.pk, user)
    return True

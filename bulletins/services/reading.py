"""What officers do with a bulletin: open it, acknowledge it. Never touches Celery.

Both are single conditional writes keyed on (person, version), so a double click or two tabs at
once record one receipt.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce

from bulletins import feed_cache
from bulletins.models import Bulletin, BulletinVersion, Receipt, Recipient
from portal import audit

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
    created = Receipt.objects.bulk_create(
        [Receipt(bulletin=bulletin, version=version, user=user, opened_at=now)],
        ignore_conflicts=True,
    )
    Recipient.objects.filter(bulletin=bulletin, user=user, first_opened_at__isnull=True).update(
        first_opened_at=now
    )
    feed_cache.reader_changed(user)
    return bool(created)


def authentication_summary(request):
    """How the person signed in this session, e.g. "password+totp"."""
    from allauth.account.authentication import get_authentication_records

    methods = []
    for record in get_authentication_records(request):
        method = record.get("type") or record.get("method")
        if method and method not in methods:
            methods.append(method)
    return "+".join(methods) or "session"


_ACKNOWLEDGE_SQL = """
INSERT INTO {table} (bulletin_id, version_id, user_id, opened_at, acknowledged_at, statement,
                     content_hash, auth_method, ip, user_agent)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (user_id, version_id) DO UPDATE SET
    acknowledged_at = EXCLUDED.acknowledged_at,
    opened_at = COALESCE({table}.opened_at, EXCLUDED.opened_at),
    statement = EXCLUDED.statement,
    content_hash = EXCLUDED.content_hash,
    auth_method = EXCLUDED.auth_method,
    ip = EXCLUDED.ip,
    user_agent = EXCLUDED.user_agent
WHERE {table}.acknowledged_at IS NULL
RETURNING id
"""


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
            _ACKNOWLEDGE_SQL.format(table=Receipt._meta.db_table),
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
    feed_cache.reader_changed(user)
    return True

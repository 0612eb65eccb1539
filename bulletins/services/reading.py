"""What officers do with a bulletin: open it, acknowledge it. Never touches Celery.

Both are single conditional writes keyed on (person, version), so a double click or two tabs at
once record one receipt.
"""

import json

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce

from bulletins import quiz
from bulletins.caching import changes
from bulletins.models import (
    AgencyPolicy,
    Bulletin,
    BulletinVersion,
    QuizAttempt,
    Receipt,
    Recipient,
)
from portal import audit, database

# What a reader signs when neither the version nor the agency's policy says otherwise.
ACKNOWLEDGEMENT_STATEMENT = AgencyPolicy.DEFAULT_STATEMENT
# What the receipt of someone who wrote the version says: they count as acknowledged from the
# moment it was published (`acknowledge_as_author`), recorded as such, not as a signature.
ISSUED_STATEMENT = "Issued this order: counted as acknowledged when it was published."
AMENDED_STATEMENT = "Made this change to the order: counted as acknowledged when it was published."
APPROVED_STATEMENT = "Approved this order: counted as acknowledged when it was published."
AS_AUTHOR = "as-author"  # the receipt's auth_method: no sign-in signed it, the publication did


def agency_statement(agency_id):
    """The agency's default statement the reader signs."""
    policy = AgencyPolicy.objects.filter(agency_id=agency_id).values_list("statement", flat=True)
    return policy.first() or ACKNOWLEDGEMENT_STATEMENT


def statement_for(statement, agency_id):
    """What the reader of a version signs: its own statement, or the agency's default."""
    return statement or agency_statement(agency_id)


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


def receipt_upsert(table, *also):
    """The ON CONFLICT clause of an acknowledgement's receipt in `table`: it completes a receipt
    the person's first open wrote (keeping when they opened it) and never rewrites one already
    acknowledged. `also`: more columns the acknowledgement sets (how it was made elsewhere)."""
    sets = [
        "acknowledged_at = EXCLUDED.acknowledged_at",
        f"opened_at = COALESCE({table}.opened_at, EXCLUDED.opened_at)",
        *(f"{column} = EXCLUDED.{column}" for column in
          ("statement", "content_hash", "auth_method", "ip", "user_agent", *also)),
    ]  # fmt: skip
    return (
        "\nON CONFLICT (user_id, version_id) DO UPDATE SET\n    "
        + ",\n    ".join(sets)
        + f"\nWHERE {table}.acknowledged_at IS NULL\n"
    )


_RECEIPT_UPSERT = receipt_upsert("{receipt}")
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


# Of both one-statement paths: the version `%(version)s` of the bulletin `%(bulletin)s`, one row
# when the person was told, the bulletin is an Order in force of their agency and the version is
# one they may acknowledge; `{check}` is the path's own condition on the version `v`.
_TARGET_SQL = """target AS (
    SELECT b.id AS bulletin_id, b.agency_id, v.id AS version_id, v.content_hash,
           COALESCE(
               NULLIF(v.statement, ''),
               (SELECT p.statement FROM {policy} p WHERE p.agency_id = b.agency_id),
               %(statement)s
           ) AS statement,
           {passed} AS passed
    FROM {bulletin} b
    JOIN {version} v ON v.bulletin_id = b.id AND v.number = %(version)s
    WHERE b.id = %(bulletin)s AND b.kind = %(order)s AND b.status = ANY(%(live)s)
      AND b.effective_at <= %(now)s AND (b.expires_at IS NULL OR b.expires_at > %(now)s)
      AND b.ack_version <= %(version)s AND %(version)s <= b.version
      AND b.agency_id = %(agency)s
      AND EXISTS (
          SELECT 1 FROM {recipient} r WHERE r.bulletin_id = b.id AND r.user_id = %(user)s
      )
      AND {check}
)"""
# The acknowledgement's receipt, recipient summary (`told`) and audit event(s), from the rows of
# `target` whose `passed` holds; `{event}` is the audit INSERT.
_RECEIPT_AND_EVENT_SQL = (
    """receipt AS (
    INSERT INTO {receipt} """
    + _RECEIPT_COLUMNS
    + """
    SELECT bulletin_id, version_id, %(user)s, %(now)s, %(now)s, statement, content_hash,
           %(auth_method)s, %(ip)s, %(user_agent)s
    FROM target WHERE passed"""
    + _RECEIPT_UPSERT
    + """    RETURNING 1
), told AS (
    UPDATE {recipient}
    SET acknowledged_version = %(version)s, acknowledged_at = %(now)s, acknowledged_method = '',
        first_opened_at = COALESCE(first_opened_at, %(now)s)
    WHERE bulletin_id = %(bulletin)s AND user_id = %(user)s
      AND (acknowledged_version IS NULL OR acknowledged_version < %(version)s)
      AND EXISTS (SELECT 1 FROM receipt)
), event AS (
    {event}
)"""
)

# Everything a first acknowledgement writes, in one statement (PostgreSQL): the receipt, the
# recipient's summary and the audit event (written by `audit.insert_each`, as `audit.record`
# writes it) commit together or not at all. It writes nothing unless the person was told, the
# bulletin is an Order in force, the version is one they may acknowledge and, if the version
# has a check of understanding, they passed it, so a row means every check of
# `_acknowledge_checked` passed. The receipt records the version's statement (or the agency's).
_ACKNOWLEDGE_AT_ONCE_SQL = (
    "WITH "
    + _TARGET_SQL.replace("{passed}", "TRUE").replace(
        "{check}",
        """(v.questions = '[]'::jsonb OR EXISTS (
          SELECT 1 FROM {quiz_attempt} q
          WHERE q.user_id = %(user)s AND q.version_id = v.id AND q.passed
      ))""",
    )
    + ", "
    + _RECEIPT_AND_EVENT_SQL
    + """
SELECT count(*) FROM receipt
"""
)
# The check of understanding answered and the acknowledgement, in one statement: for a version
# with questions and `%(answers)s` (a JSON array of choice indexes) that answer each of them
# with one of its choices, the attempt (`passed`: every answer is the version's), its audit
# event (as `answer_check` writes it) and, when passed, everything `_ACKNOWLEDGE_AT_ONCE_SQL`
# writes. Returns (passed, receipts written), or no row when it wrote nothing.
_ANSWER_AND_ACKNOWLEDGE_SQL = (
    "WITH "
    + _TARGET_SQL.replace(
        "{passed}",
        "jsonb_path_query_array(v.questions, '$[*].answer') = CAST(%(answers)s AS jsonb)",
    ).replace(
        "{check}",
        """v.questions <> '[]'::jsonb
      AND jsonb_array_length(v.questions) = jsonb_array_length(CAST(%(answers)s AS jsonb))
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements(v.questions) WITH ORDINALITY AS q(item, n)
          WHERE jsonb_array_length(q.item -> 'choices')
                <= (CAST(%(answers)s AS jsonb) ->> CAST(q.n - 1 AS integer))::integer
      )""",
    )
    + """, attempt AS (
    INSERT INTO {quiz_attempt} (bulletin_id, version_id, user_id, answers, passed, created_at)
    SELECT bulletin_id, version_id, %(user)s, CAST(%(answers)s AS jsonb), passed, %(now)s
    FROM target
    RETURNING passed
), """
    + _RECEIPT_AND_EVENT_SQL
    + """
SELECT passed, (SELECT count(*) FROM receipt) FROM attempt
"""
)
# Of the audit event, what the statement knows only per row of `target`.
_EVENT_FROM_TARGET = {
    "agency_id": "agency_id",
    "detail": "jsonb_build_object('content_hash', content_hash)",
}
# The audit events of an answered check: the attempt's, as `answer_check` records it, and the
# acknowledgement's when the statement wrote it, as `_EVENT_FROM_TARGET` does.
_ANSWER_EVENTS = """(
    SELECT agency_id, 'bulletin.answer_check' AS action,
           jsonb_build_object('passed', passed) AS detail
    FROM target
    UNION ALL
    SELECT agency_id, 'bulletin.acknowledge', jsonb_build_object('content_hash', content_hash)
    FROM target WHERE EXISTS (SELECT 1 FROM receipt)
) AS events"""
_EVENT_FROM_EVENTS = {"agency_id": "agency_id", "action": "action", "detail": "detail"}
_MAX_VERSION = 2**31 - 1


def _tables():
    return {
        "bulletin": Bulletin._meta.db_table,
        "version": BulletinVersion._meta.db_table,
        "recipient": Recipient._meta.db_table,
        "receipt": Receipt._meta.db_table,
        "policy": AgencyPolicy._meta.db_table,
        "quiz_attempt": QuizAttempt._meta.db_table,
    }


def _target_params(bulletin_id, *, user, version_number, now):
    return {
        "bulletin": bulletin_id,
        "version": version_number,
        "user": user.pk,
        "agency": user.agency_id,  # told, but moved to another agency since: not any more
        "order": Bulletin.Kind.ORDER.value,
        "live": [status.value for status in Bulletin.LIVE_STATUSES],
        "now": now,
        "statement": ACKNOWLEDGEMENT_STATEMENT,
    }


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
    params = {
        **_target_params(bulletin_id, user=user, version_number=version_number, now=now),
        **evidence,
        **event_params,
    }
    with database.prepared_cursor() as cursor:
        cursor.execute(_ACKNOWLEDGE_AT_ONCE_SQL.format(event=event_sql, **_tables()), params)
        return cursor.fetchone()[0] == 1


def _check_acknowledgeable(bulletin, version_number, now):
    if not bulletin.requires_acknowledgement:
        raise ValidationError("Only Orders are acknowledged.")
    if bulletin.state_at(now) != Bulletin.Status.IN_FORCE:
        raise ValidationError("This bulletin is no longer in force.")
    if not bulletin.ack_version <= version_number <= bulletin.version:
        raise ValidationError("This order has changed since you opened it. Read the new version.")


def acknowledge_offline_checked(
    bulletin, *, user, version_number, now, request, device_at, client_id
):
    """The checked way for an acknowledgement made on a device while offline, sent when it came
    back (`services.offline_ack` decides first whether it still applies): the receipt also says
    how, with the device's time and its id. True if this call recorded it."""
    how = {"method": Receipt.Method.OFFLINE, "acknowledged_on_device_at": device_at,
           "client_id": client_id}  # fmt: skip
    recorded = _acknowledge_checked(
        bulletin, user=user, version_number=version_number, now=now, request=request, how=how
    )
    if recorded:
        changes.reader_changed(user, bulletin.pk)
    return recorded


def acknowledge_made_elsewhere(bulletin, *, user, version_number, now, how, request=None):
    """The checked way for an acknowledgement made away from the bulletin's page (co-signed
    after roll call, signed on the paper sheet): `how` holds the receipt's fields saying how
    (`method`, `roll_call_id`, `statement`, `recorded_by_id`). True if this call recorded it."""
    recorded = _acknowledge_checked(
        bulletin, user=user, version_number=version_number, now=now, request=request, how=how
    )
    if recorded:
        changes.reader_changed(user, bulletin.pk)
    return recorded


@transaction.atomic
def _acknowledge_checked(bulletin, *, user, version_number, now, request, how=None):
    """Every other case, checked one by one: True if this call recorded the acknowledgement,
    False if it was already recorded; ValidationError saying why it cannot be. `how`: the
    receipt's fields saying how it was made, when not in the portal (`method`, ...)."""
    _check_acknowledgeable(bulletin, version_number, now)
    version_id, content_hash, statement, questions = (
        BulletinVersion.objects.filter(bulletin=bulletin, number=version_number)
        .values_list("pk", "content_hash", "statement", "questions")
        .get()
    )
    acknowledged = Receipt.objects.filter(
        user=user, version_id=version_id, acknowledged_at__isnull=False
    )
    if acknowledged.exists():
        return False
    passed = QuizAttempt.objects.filter(user=user, version_id=version_id, passed=True)
    if questions and not passed.exists():
        raise ValidationError(quiz.ANSWER_FIRST, code="quiz")
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
                statement_for(statement, bulletin.agency_id),
                content_hash,
                evidence["auth_method"],
                connection.ops.adapt_ipaddressfield_value(evidence["ip"]),
                evidence["user_agent"],
            ],
        )
        row = cursor.fetchone()
        if row is None:
            return False
    how = how or {}
    if how:
        Receipt.objects.filter(pk=row[0]).update(**how)
    Recipient.objects.filter(bulletin=bulletin, user=user).filter(
        Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=version_number)
    ).update(
        acknowledged_version=version_number,
        acknowledged_at=now,
        acknowledged_method=how.get("method", Receipt.Method.PORTAL),
        first_opened_at=Coalesce("first_opened_at", now),
    )
    event.agency_id, event.detail = bulletin.agency_id, {"content_hash": content_hash}
    if how:
        event.detail |= {
            name: value.isoformat() if hasattr(value, "isoformat") else str(value)
            for name, value in how.items()
        }
    event.save(force_insert=True)
    return True


@transaction.atomic
def answer_check(bulletin, *, user, answers, now, request=None, version_number=None):
    """Record `user`'s try at the check of understanding of version `version_number` (default:
    the current one) of the Order `bulletin`: a QuizAttempt, passed or not, and its audit event.
    Returns True when every answer was right (the acknowledgement may follow).

    Raises Bulletin.DoesNotExist if it is not addressed to `user`, and ValidationError, with
    nothing recorded, when it cannot be acknowledged, has no questions, or an answer is missing
    or not one of the choices."""
    if not bulletin.is_addressed_to(user):
        raise Bulletin.DoesNotExist
    number = bulletin.version if version_number is None else version_number
    _check_acknowledgeable(bulletin, number, now)
    version = BulletinVersion.objects.only("pk", "questions").get(bulletin=bulletin, number=number)
    if not version.questions:
        raise ValidationError("This order has no questions to answer.", code="no_questions")
    passed = quiz.check_answers(version.questions, list(answers))
    QuizAttempt.objects.create(
        bulletin=bulletin, version=version, user=user, answers=list(answers), passed=passed,
        created_at=now,
    )  # fmt: skip
    audit.record(
        "bulletin.answer_check", by=user, obj=bulletin, version=number, now=now,
        request=request, passed=passed,
    )  # fmt: skip
    changes.recipients_changed(bulletin.pk)  # the coverage figures count the wrong answers
    return passed


def answer_and_acknowledge(bulletin_id, *, user, version_number, answers, now, request=None):
    """The check of understanding of version `version_number` answered and, when every answer
    is right, that version acknowledged, in one go (the bulletin page's and the API's
    acknowledgement with answers). Returns (passed, recorded): whether every answer was right,
    and whether this call recorded the acknowledgement (False: wrong answers, or recorded
    before). Every try is one attempt with its audit event, as `answer_check` records it.

    Raises what `answer_check` and `acknowledge` raise (Bulletin.DoesNotExist when it is not
    addressed to `user`; ValidationError with nothing recorded for an unanswered question or an
    answer that is not a choice). Almost every call is a first answer of someone told, with an
    answer for each question: one statement records it all; anything else takes the checked
    way (`answer_check`, then `acknowledge`), which finds out why and says so."""
    at_once = _answer_and_acknowledge_at_once(
        bulletin_id, user=user, version_number=version_number, answers=answers, now=now,
        request=request,
    )  # fmt: skip
    if at_once is not None:
        passed, recorded = at_once
    else:
        bulletin = Bulletin.objects.published().get(pk=bulletin_id)
        passed = answer_check(
            bulletin, user=user, answers=answers, now=now, request=request,
            version_number=version_number,
        )  # fmt: skip
        if not passed:
            return False, False
        return True, acknowledge(
            bulletin_id, user=user, version_number=version_number, now=now, request=request
        )
    if recorded:
        changes.reader_changed(user, bulletin_id)  # the figures too: they count the attempts
    else:
        changes.recipients_changed(bulletin_id)  # the coverage figures count wrong answers
    return passed, recorded


def _well_formed(answers):
    """Whether `answers` could answer a check at all: one choice index per question."""
    return (
        isinstance(answers, list | tuple)
        and 0 < len(answers) <= quiz.MAX_QUESTIONS
        and all(type(answer) is int and 0 <= answer < quiz.MAX_CHOICES for answer in answers)
    )


def _answer_and_acknowledge_at_once(bulletin_id, *, user, version_number, answers, now, request):
    """The common case of `answer_and_acknowledge` as a single statement, without loading the
    bulletin: (passed, recorded) when it recorded the attempt; None means nothing was written
    and nothing was decided. Only on PostgreSQL; elsewhere always None."""
    if not database.is_postgresql() or not _well_formed(answers):
        return None
    if version_number is None or not 0 < version_number <= _MAX_VERSION:
        return None
    evidence, event = _evidence(user, bulletin_id, version_number, now, request)
    event_sql, event_params = audit.insert_each(
        event, source=_ANSWER_EVENTS, replace=_EVENT_FROM_EVENTS
    )
    params = {
        **_target_params(bulletin_id, user=user, version_number=version_number, now=now),
        "answers": json.dumps(list(answers)),
        **evidence,
        **event_params,
    }
    with database.prepared_cursor() as cursor:
        cursor.execute(_ANSWER_AND_ACKNOWLEDGE_SQL.format(event=event_sql, **_tables()), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0], row[1] == 1


@transaction.atomic(savepoint=False)  # in the publication's transaction: no savepoint of its own
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
        acknowledged_method=Receipt.Method.PORTAL,  # not an earlier one's roll call or paper
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
        .select_related("created_by", "approved_by")
        .first()
    )
    if author is None or author.created_by is None:
        return False
    statement = ISSUED_STATEMENT if author.number == 1 else AMENDED_STATEMENT
    recorded = acknowledge_as_author(
        bulletin, person=author.created_by, now=now, statement=statement, at=author.created_at
    )
    if author.approved_by is not None:  # the second person, told only now as well
        acknowledge_as_author(
            bulletin,
            person=author.approved_by,
            now=now,
            statement=APPROVED_STATEMENT,
            at=author.created_at,
        )
    return recorded


def record_restricted_view(
    bulletin, *, user, request, version, now=None, action="bulletin.view_restricted", **detail
):
    """Audit that `user` was shown `version` of a restricted bulletin (or, with `action`,
    something of it, such as an attachment). Nothing for a bulletin that is not restricted."""
    if bulletin.is_restricted:
        audit.record(
            action, by=user, obj=bulletin, version=version, now=now, request=request, **detail
        )

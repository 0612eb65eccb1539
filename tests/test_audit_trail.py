"""The audit trail: what is recorded, the sealed hash chain, verification and reading."""

import datetime as dt
import io
import json
import threading
from http import HTTPStatus

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal import audit
from portal.models import AuditEvent, User
from tests.factories import PASSWORD, UserFactory, draft_bulletin, make_unit
from tests.sign_in import actions, sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]

JULY_8 = dt.datetime(2026, 7, 8, 21, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    """`verify_audit` compares with the checkpoints there: this test's own, none yet."""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"


def test_an_event_carries_time_to_the_millisecond_and_a_chained_hash(officer):
    with time_machine.travel(dt.datetime(2026, 7, 8, 21, 0, 0, 123456, tzinfo=dt.UTC)):
        first = audit.record("test.first", by=officer)
        second = audit.record("test.second", by=officer)
    audit.seal()

    first = AuditEvent.objects.get(pk=first.pk)
    stored = AuditEvent.objects.get(pk=second.pk)
    assert stored.at.microsecond % 1000 == 0
    assert stored.at.utcoffset() == dt.timedelta(0)
    assert stored.seq == first.seq + 1
    assert stored.prev_hash == first.hash != ""
    assert stored.hash == audit.content_hash(stored)


def test_events_of_a_request_record_ip_user_agent_and_request_id(officer):
    client = Client(HTTP_USER_AGENT="PatrolCar/1.0")

    response = sign_in(client, officer.email)

    event = AuditEvent.objects.get(action="auth.sign_in")
    assert (event.actor, event.ip, event.user_agent) == (officer, "127.0.0.1", "PatrolCar/1.0")
    assert event.request_id == response.headers["X-Request-ID"]
    assert event.agency_id == officer.agency_id


def test_sign_in_failure_and_password_change_are_audited(client, officer):
    sign_in(Client(), officer.email, "wrong-password-123")
    client.force_login(officer)

    client.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": "a-new-long-passphrase",
            "password2": "a-new-long-passphrase",
        },
    )

    failure = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert (failure.outcome, failure.object_id) == ("failure", str(officer.pk))
    assert "wrong-password-123" not in json.dumps(failure.detail)
    assert "auth.password_change" in actions()


def _require_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")


def _advisory_locks_held():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks "
            "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
        )
        return cursor.fetchone()[0]


def _chain():
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq"))


def _assert_linked(chain):
    assert [event.seq for event in chain] == list(range(1, len(chain) + 1))
    assert [event.prev_hash for event in chain] == ["", *(event.hash for event in chain[:-1])]
    assert all(event.hash == audit.content_hash(event) for event in chain)


def test_recording_is_one_insert_that_takes_no_lock_and_leaves_the_event_unsealed(officer):
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            event = audit.record("test.event", by=officer)
        locks = _advisory_locks_held() if connection.vendor == "postgresql" else 0

    assert [query["sql"].split()[0] for query in queries] == ["INSERT"]
    assert locks == 0
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.seq, stored.prev_hash, stored.hash) == (None, "", "")
    assert (event.seq, event.prev_hash, event.hash) == (None, "", "")
    assert audit.unsealed_count() == 1


def test_sealing_chains_in_seq_order_and_a_second_seal_takes_only_new_events(officer):
    first = [audit.record("test.event", by=officer, n=n) for n in range(3)]

    assert audit.seal(limit=2) == 2
    assert audit.seal() == 1
    sealed_once = {event.pk: (event.seq, event.prev_hash, event.hash) for event in _chain()}
    later = [audit.record("test.event", by=officer, n=n) for n in range(3, 5)]
    assert audit.unsealed_count() == 2
    assert audit.seal() == 2
    assert audit.seal() == 0

    chain = _chain()
    assert [event.pk for event in chain] == [event.pk for event in first + later]
    _assert_linked(chain)
    assert {e.pk: (e.seq, e.prev_hash, e.hash) for e in chain[:3]} == sealed_once
    assert audit.first_broken_link() == (None, 5)


def test_sealing_thousands_of_events_takes_a_handful_of_queries(django_assert_max_num_queries):
    at = audit.to_utc_millisecond(dt.datetime(2026, 7, 8, 21, 0, tzinfo=dt.UTC))
    AuditEvent.objects.bulk_create(
        AuditEvent(at=at, action="test.bulk", detail={"n": n}) for n in range(2500)
    )

    # SQLite caps a statement at 999 parameters, so its bulk_update needs more statements.
    with django_assert_max_num_queries(12 if connection.vendor == "postgresql" else 20):
        assert audit.seal() == 2500

    assert audit.first_broken_link() == (None, 2500)


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_late_is_sealed_after_one_with_a_higher_id(officer):
    """A request still open (its event inserted, not committed) neither blocks another request
    recording an event nor a sealer; its event joins the chain after it commits."""
    _require_postgresql()
    inserted, may_commit, late = threading.Event(), threading.Event(), {}

    def slow_request():
        try:
            with transaction.atomic():
                late["event"] = audit.record("test.late", by=officer)
                inserted.set()
                may_commit.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        assert inserted.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:  # a chain lock held by the slow request: fail
                cursor.execute("SET LOCAL lock_timeout = '5s'")
            early = audit.record("test.early", by=officer)
        sealed_while_open = audit.seal()
    finally:
        may_commit.set()
        thread.join(timeout=30)
    sealed_after_commit = audit.seal()

    assert late["event"].pk < early.pk
    assert (sealed_while_open, sealed_after_commit) == (1, 1)
    chain = _chain()
    assert [event.action for event in chain] == ["test.early", "test.late"]
    _assert_linked(chain)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "intact: 2 events checked, 0 awaiting sealing" in out.getvalue()


def test_the_database_refuses_to_update_or_delete_audit_events(officer):
    _require_postgresql()
    event = audit.record("test.event", by=officer)
    audit.seal()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(outcome="failure")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.get(pk=event.pk).outcome == "success"


FORGED_HASH = "0" * 64


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "failure"},
        {"hash": FORGED_HASH},
        {"prev_hash": FORGED_HASH},
        {"seq": 99},
        {"seq": None, "prev_hash": "", "hash": ""},  # unsealing
        {"seq": 99, "prev_hash": "", "hash": FORGED_HASH},  # re-sealing
    ],
    ids=["content", "hash", "prev_hash", "seq", "unsealing", "re-sealing"],
)
def test_the_database_refuses_any_change_to_a_sealed_event(officer, change):
    _require_postgresql()
    event = audit.record("test.event", by=officer)
    audit.seal()
    sealed = AuditEvent.objects.values().get(pk=event.pk)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(**change)

    assert AuditEvent.objects.values().get(pk=event.pk) == sealed


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "failure"},
        {"detail": {"n": 2}},
        {"at": JULY_8},
        {"actor": None},
        {"seq": 99, "prev_hash": "", "hash": FORGED_HASH, "outcome": "failure"},
        {"seq": 99},
        {"hash": FORGED_HASH},
        {"prev_hash": FORGED_HASH},
    ],
    ids=["content", "detail", "at", "actor", "sealing-and-content", "seq-alone", "hash-alone",
         "prev_hash-alone"],
)  # fmt: skip
def test_the_database_refuses_to_change_an_unsealed_event_other_than_by_sealing_it(officer, change):
    _require_postgresql()
    event = audit.record("test.event", by=officer, n=1)
    unsealed = AuditEvent.objects.values().get(pk=event.pk)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(**change)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.values().get(pk=event.pk) == unsealed


def test_the_database_lets_an_unsealed_event_be_sealed(officer):
    _require_postgresql()
    event = audit.record("test.event", by=officer)

    updated = AuditEvent.objects.filter(pk=event.pk).update(seq=1, prev_hash="", hash=FORGED_HASH)

    assert updated == 1
    assert AuditEvent.objects.values_list("seq", "hash").get(pk=event.pk) == (1, FORGED_HASH)


def _tamper(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER may run
        cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER USER")


def test_verify_audit_passes_an_intact_trail(officer):
    for n in range(5):
        audit.record("test.event", by=officer, n=n)
    audit.seal()
    out = io.StringIO()

    call_command("verify_audit", stdout=out)

    assert "Audit trail intact: 5 events checked, 0 awaiting sealing." in out.getvalue()


def _three_sealed_then_two_waiting(officer):
    for n in range(3):
        audit.record("test.event", by=officer, n=n)
    audit.seal()
    for n in range(2):
        audit.record("test.event", by=officer, n=n)


def test_verify_audit_reports_the_events_awaiting_sealing_and_seals_nothing(officer):
    _three_sealed_then_two_waiting(officer)
    out = io.StringIO()

    call_command("verify_audit", stdout=out)

    assert "intact: 3 events checked, 2 awaiting sealing." in out.getvalue()
    assert audit.unsealed_count() == 2


def test_verify_audit_with_seal_seals_first(officer):
    _three_sealed_then_two_waiting(officer)
    out = io.StringIO()

    call_command("verify_audit", "--seal", stdout=out)

    assert "Sealed 2 events." in out.getvalue()
    assert "intact: 5 events checked, 0 awaiting sealing." in out.getvalue()
    _assert_linked(_chain())


def test_verify_audit_reports_the_first_tampered_row(officer):
    _require_postgresql()
    events = [audit.record("test.event", by=officer, n=n) for n in range(5)]
    audit.seal()
    _tamper("UPDATE portal_auditevent SET outcome = 'failure' WHERE id = %s", [events[2].pk])

    with pytest.raises(CommandError, match=rf"event #{events[2].pk}: its content"):
        call_command("verify_audit")


def test_verify_audit_reports_a_removed_row(officer):
    _require_postgresql()
    events = [audit.record("test.event", by=officer, n=n) for n in range(5)]
    audit.seal()
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])

    with pytest.raises(CommandError, match=rf"event #{events[2].pk}: does not follow"):
        call_command("verify_audit")


def test_verify_audit_reports_a_removed_row_even_if_the_rest_was_chained_again(officer):
    """Whoever removes a row and recomputes every later hash still leaves a gap in `seq`."""
    _require_postgresql()
    events = [audit.record("test.event", by=officer, n=n) for n in range(5)]
    audit.seal()
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    chain = _chain()
    for before, event in zip(chain, chain[1:], strict=False):
        event.prev_hash = before.hash
        event.hash = audit.content_hash(event)
        _tamper(
            "UPDATE portal_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
            [event.prev_hash, event.hash, event.pk],
        )

    with pytest.raises(CommandError, match=rf"event #{events[2].pk}: does not follow"):
        call_command("verify_audit")


def test_beat_seals_the_audit_trail_every_interval(officer):
    from portal.celery import app as celery_app
    from portal.tasks import seal_audit_task

    celery_app.loader.import_default_modules()  # what a worker does: autodiscovery
    entries = [
        e for e in celery_app.conf.beat_schedule.values() if e["task"] == seal_audit_task.name
    ]
    audit.record("test.event", by=officer)

    assert seal_audit_task.name in celery_app.tasks
    assert [entry["schedule"] for entry in entries] == [
        float(django_settings.AUDIT_SEAL_INTERVAL_SECONDS)
    ]
    assert seal_audit_task.apply().get() == 1
    assert audit.unsealed_count() == 0


@pytest.fixture
def auditor(agency):
    return UserFactory(email="auditor@agency.test", unit=agency, role=User.Role.AUDITOR)


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("officer", HTTPStatus.FORBIDDEN),
        ("sergeant", HTTPStatus.FORBIDDEN),
        ("auditor", HTTPStatus.OK),
        ("admin", HTTPStatus.OK),
    ],
)
def test_who_may_read_the_audit_trail(client, request, persona, expected):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(reverse("audit:events"))

    assert response.status_code == expected
    assert (">Audit</a>" in client.get(reverse("bulletins:feed")).text) is (
        expected == HTTPStatus.OK
    )


def test_an_auditor_publishes_nothing(client, auditor, sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17)
    client.force_login(auditor)

    create = client.get(reverse("bulletins:create"))
    publish = client.post(reverse("bulletins:publish", args=[draft.pk]))

    assert create.status_code == HTTPStatus.FORBIDDEN
    assert publish.status_code == HTTPStatus.NOT_FOUND


def test_the_audit_trail_filters_and_its_reading_is_audited(client, auditor, officer, sergeant):
    audit.record("bulletin.publish", by=sergeant, obj=sergeant)
    audit.record("auth.sign_in", by=officer)
    other_agency = make_unit("Suffolk County PD")
    outsider = UserFactory(email="suffolk@agency.test", unit=other_agency)
    audit.record("auth.sign_in", by=outsider)
    client.force_login(auditor)

    everything = client.get(reverse("audit:events"))
    sign_ins = client.get(reverse("audit:events"), {"action": "auth.", "actor": "officer@"})

    rows = sign_ins.context["page"].object_list
    assert [(e.action, e.actor_label) for e in rows] == [("auth.sign_in", officer.email)]
    assert "suffolk@agency.test" not in everything.text
    reads = AuditEvent.objects.filter(action="audit.view", actor=auditor)
    assert [e.detail["filters"] for e in reads.order_by("id")] == [
        {},
        {"action": "auth.", "actor": "officer@"},
    ]


def test_the_audit_trail_filters_by_date_and_object(client, admin, officer):
    with time_machine.travel(JULY_8):
        audit.record("person.change", by=admin, obj=officer)
    audit.record("person.change", by=admin, obj=admin)
    client.force_login(admin)

    by_date = client.get(
        reverse("audit:events"), {"date_from": "2026-07-08", "date_to": "2026-07-09"}
    )
    by_object = client.get(
        reverse("audit:events"), {"object_type": "portal.user", "object_id": str(admin.pk)}
    )

    assert [e.object_id for e in by_date.context["page"].object_list] == [str(officer.pk)]
    assert [e.object_id for e in by_object.context["page"].object_list] == [str(admin.pk)]


def test_the_audit_trail_exports_as_csv_and_the_export_is_audited(client, admin, officer):
    audit.record("auth.sign_in", by=officer)
    change = audit.record("person.change", by=admin, obj=officer)
    audit.seal()
    change.refresh_from_db()
    client.force_login(admin)

    response = client.get(reverse("audit:export"), {"action": "person.change"})

    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert lines[0].startswith("id,at_utc,actor_label,action")
    assert lines[0].endswith(",seq,prev_hash,hash")
    assert len(lines) == 2 and ",person.change," in lines[1]
    assert lines[1].endswith(f",{change.seq},{change.prev_hash},{change.hash}")
    export = AuditEvent.objects.get(action="audit.export")
    assert export.detail["filters"] == {"action": "person.change"}


def test_the_audit_page_shows_agency_time_to_the_millisecond_and_the_csv_utc(
    client, admin, officer
):
    with time_machine.travel(dt.datetime(2026, 7, 8, 10, 57, 59, 123456, tzinfo=dt.UTC)):
        audit.record("auth.sign_in", by=officer)
    client.force_login(admin)

    page = client.get(reverse("audit:events"), {"action": "auth.sign_in"})
    export = client.get(reverse("audit:export"), {"action": "auth.sign_in"})

    html = page.content.decode()
    assert '<th scope="col">Time (New York)</th>' in html
    assert "<td>2026-07-08 06:57:59.123</td>" in html
    assert "UTC" not in html.split("<table>")[1]
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].split(",")[1] == "at_utc"
    assert lines[1].split(",")[1] == "2026-07-08T10:57:59.123+00:00"


def test_the_audit_list_runs_few_queries_at_any_volume(
    client, admin, officer, django_assert_max_num_queries
):
    for n in range(300):
        audit.record("test.event", by=officer, n=n)
    client.force_login(admin)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("audit:events"))

    assert len(response.context["page"].object_list) == 100


def test_every_bulletin_transition_and_acknowledgement_is_audited(
    client, sergeant, officer, precinct17
):
    from tests.factories import published_bulletin

    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(officer)
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})

    assert {"bulletin.publish", "bulletin.acknowledge"} <= set(actions())


def test_a_role_change_is_audited_with_the_new_role(client, admin, officer):
    client.force_login(admin)

    client.post(reverse("person_role", args=[officer.pk]), {"role": "supervisor"})

    change = AuditEvent.objects.get(action="person.change")
    assert change.detail["role"] == "supervisor"
    assert change.actor == admin

"""The audit trail against whoever owns its table (issue 18, point 16): each way of rewriting it
that the issue names is refused by the database or reported by `verify_audit`."""

import copy
import datetime as dt
import hashlib
import importlib
import io
import json
import uuid

import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from portal import audit
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

JULY_8 = dt.datetime(2026, 7, 8, 21, 0, tzinfo=dt.UTC)
JULY_8_TEXT = "2026-07-08T21:00:00.000+00:00"
ROLE_SQL = django_settings.BASE_DIR / "docs" / "deploy" / "postgresql-app-role.sql"
migration = importlib.import_module("portal.migrations.0005_audit_chain_keyed")


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.AUDIT_CHECKPOINT_DIR


def _require_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the triggers and roles exist on PostgreSQL only")


def _sealed(officer, count=5):
    events = [audit.record("test.event", by=officer, n=n) for n in range(count)]
    audit.seal()
    return list(AuditEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("seq"))


def _tamper(sql, params=()):
    """What the table's owner can do: switch the triggers off and write anything."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER may run
        cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER USER")


def _chain_again(key, *, from_seq):
    """Number the sealed events 1, 2, ... and link and hash them again with `key` from the
    event that is to be at `from_seq` on."""
    previous = ""
    chain = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    for seq, event in enumerate(chain, start=1):
        if seq < from_seq:
            previous = event.hash
            continue
        event.seq, event.prev_hash = seq, previous
        event.hash = previous = audit.content_hash(event, key)
        _tamper(
            "UPDATE portal_auditevent SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.seq, event.prev_hash, event.hash, event.pk],
        )


def _verified():
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def _checkpoint_lines(checkpoint_dir):
    return [json.loads(line) for line in (checkpoint_dir / "checkpoints.jsonl").open()]


def test_the_seal_covers_seq(officer):
    [event] = _sealed(officer, count=1)
    moved = copy.copy(event)
    moved.seq = 2

    assert audit.content_hash(event) == event.hash
    assert audit.content_hash(moved) != event.hash


def test_the_seal_is_keyed_by_the_audit_chain_key(officer, settings):
    [event] = _sealed(officer, count=1)

    settings.AUDIT_CHAIN_KEY = "another key"

    assert audit.content_hash(event) != event.hash
    assert audit.first_broken_link()[0].event_id == event.pk


def test_changing_seq_is_reported(officer):
    _require_postgresql()
    events = _sealed(officer)
    _tamper("UPDATE portal_auditevent SET seq = -seq WHERE seq IN (3, 4)")
    _tamper("UPDATE portal_auditevent SET seq = 7 + seq WHERE seq IN (-3, -4)")  # 4 <-> 3

    with pytest.raises(CommandError, match=rf"event #{events[3].pk}: does not follow"):
        call_command("verify_audit")


def test_deleting_the_newest_events_is_caught_by_the_checkpoint(officer):
    _require_postgresql()
    _sealed(officer)
    audit.write_checkpoint(now=JULY_8)

    _tamper("DELETE FROM portal_auditevent WHERE seq > 3")

    assert audit.first_broken_link() == (None, 3)  # the chain alone cannot tell
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit")
    assert str(refused.value) == (
        f"The audit trail ends at seq 3, behind the checkpoint of {JULY_8_TEXT} (seq 5): "
        "sealed events were removed."
    )


def test_events_sealed_over_removed_newest_ones_are_caught_by_the_checkpoint(officer):
    _require_postgresql()
    _sealed(officer)
    audit.write_checkpoint(now=JULY_8)
    _tamper("DELETE FROM portal_auditevent WHERE seq > 3")

    newer = _sealed(officer, count=2)

    assert audit.first_broken_link() == (None, 5)
    with pytest.raises(CommandError, match=rf"Event #{newer[1].pk} at seq 5 is not the one"):
        call_command("verify_audit")


def test_no_checkpoint_is_signed_over_a_chain_that_went_back(officer, checkpoint_dir):
    from portal.tasks import checkpoint_audit_task

    _require_postgresql()
    _sealed(officer)
    checkpoint_audit_task.apply().get()
    _tamper("DELETE FROM portal_auditevent WHERE seq > 3")

    with pytest.raises(audit.CheckpointError, match="ends at seq 3"):
        checkpoint_audit_task.apply().get()

    assert [line["seq"] for line in _checkpoint_lines(checkpoint_dir)] == [5]


def test_deleting_one_in_the_middle_and_chaining_again_without_the_key_is_caught(officer):
    _require_postgresql()
    events = _sealed(officer)

    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[2].pk])
    _chain_again(hashlib.sha256(b"a guess at the key").digest(), from_seq=3)

    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2, 3, 4]
    with pytest.raises(CommandError, match=rf"event #{events[3].pk}: its content no longer"):
        call_command("verify_audit")


def test_chaining_again_with_a_stolen_key_is_still_caught_by_the_checkpoint(officer):
    _require_postgresql()
    events = _sealed(officer)
    audit.write_checkpoint(now=JULY_8)

    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[2].pk])
    _chain_again(audit.chain_key(), from_seq=3)

    assert audit.first_broken_link() == (None, 4)
    with pytest.raises(CommandError, match=r"ends at seq 4, behind the checkpoint of .* \(seq 5\)"):
        call_command("verify_audit")


def test_the_database_refuses_to_truncate_the_audit_table(officer):
    _require_postgresql()
    _sealed(officer)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: TRUNCATE may run

    for sql in ("TRUNCATE portal_auditevent", "TRUNCATE portal_user, portal_unit CASCADE"):
        refused = pytest.raises(DatabaseError, match="cannot be truncated")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)

    assert AuditEvent.objects.count() == 5


def test_the_application_role_appends_and_seals_but_cannot_rewrite_the_trail(officer):
    """docs/deploy/postgresql-app-role.sql applied to a role of this test's own (rolled back
    with the test, like everything else it does)."""
    _require_postgresql()
    role = f"portal_app_test_{uuid.uuid4().hex[:12]}"
    grants = "\n".join(
        line for line in ROLE_SQL.read_text().splitlines() if not line.startswith("--")
    ).replace(':"app"', f'"{role}"')
    sealed = _sealed(officer, count=2)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}"')
        for statement in filter(str.strip, grants.split(";")):
            cursor.execute(statement)
        cursor.execute(f'SET ROLE "{role}"')

    audit.record("test.event", by=officer, n=2)
    assert audit.seal() == 1
    assert audit.first_broken_link() == (None, 3)
    for sql in (
        "DELETE FROM portal_auditevent",
        "TRUNCATE portal_auditevent",
        "UPDATE portal_auditevent SET outcome = 'failure'",
        "ALTER TABLE portal_auditevent DISABLE TRIGGER USER",
        "DROP TRIGGER portal_auditevent_no_truncate ON portal_auditevent",
    ):
        refused = pytest.raises(DatabaseError, match="permission denied|must be owner")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=sealed[0].pk).update(hash="0" * 64)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


def test_beat_seals_then_appends_a_signed_checkpoint_every_five_minutes(officer, checkpoint_dir):
    from portal.celery import app as celery_app
    from portal.tasks import checkpoint_audit_task

    celery_app.loader.import_default_modules()
    entries = [
        e for e in celery_app.conf.beat_schedule.values() if e["task"] == checkpoint_audit_task.name
    ]
    for n in range(2):
        audit.record("test.event", by=officer, n=n)

    assert [entry["schedule"] for entry in entries] == [300.0]
    assert checkpoint_audit_task.apply().get() == 2
    audit.record("test.event", by=officer, n=3)
    assert checkpoint_audit_task.apply().get() == 3

    head = AuditEvent.objects.get(seq=3)
    lines = _checkpoint_lines(checkpoint_dir)
    assert [line["seq"] for line in lines] == [2, 3]
    assert set(lines[-1]) == {"seq", "hash", "at", "mac"}
    assert lines[-1]["hash"] == head.hash
    assert audit.latest_checkpoint() == audit.Checkpoint(3, head.hash, lines[-1]["at"])


def test_nothing_sealed_writes_no_checkpoint(checkpoint_dir):
    assert audit.write_checkpoint(now=JULY_8) is None
    assert not (checkpoint_dir / "checkpoints.jsonl").exists()


def test_verify_audit_says_which_checkpoint_the_trail_matches(officer):
    _sealed(officer)
    audit.write_checkpoint(now=JULY_8)
    _sealed(officer, count=2)

    output = _verified()

    assert "Audit trail intact: 7 events checked, 0 awaiting sealing." in output
    assert f"It matches the checkpoint of {JULY_8_TEXT} (seq 5)." in output


def test_verify_audit_says_when_there_is_no_checkpoint_yet(officer, checkpoint_dir):
    _sealed(officer)

    output = _verified()

    assert "intact: 5 events checked" in output
    assert f"No checkpoint in {checkpoint_dir / 'checkpoints.jsonl'} yet" in output


def test_a_checkpoint_not_signed_with_the_key_is_reported(officer, checkpoint_dir):
    _sealed(officer)
    audit.write_checkpoint(now=JULY_8)
    forged = {"seq": 3, "hash": "0" * 64, "at": JULY_8_TEXT, "mac": "0" * 64}
    with (checkpoint_dir / "checkpoints.jsonl").open("a") as file:
        file.write(json.dumps(forged) + "\n")

    with pytest.raises(CommandError, match="is not signed with AUDIT_CHAIN_KEY"):
        call_command("verify_audit")


def test_a_checkpoint_line_cut_short_by_a_crash_is_followed_on_a_new_line(officer, checkpoint_dir):
    _sealed(officer, count=1)
    checkpoint_dir.mkdir()
    (checkpoint_dir / "checkpoints.jsonl").write_text('{"seq": 1, "ha')

    audit.write_checkpoint(now=JULY_8)

    assert audit.latest_checkpoint().seq == 1
    assert "It matches the checkpoint" in _verified()


def _sealed_under_the_old_rule(officer, count=3):
    """Events as a database sealed them before migration 0005: SHA-256, no seq, no key."""
    events = [audit.record("test.event", by=officer, n=n) for n in range(count)]
    previous, unsealed = "", AuditEvent.objects.filter(pk__in=[e.pk for e in events])
    for seq, event in enumerate(unsealed.order_by("id"), start=1):
        event.seq, event.prev_hash = seq, previous
        event.hash = previous = migration.old_hash(event)
        AuditEvent.objects.filter(pk=event.pk).update(  # sealing: what the trigger allows
            seq=event.seq, prev_hash=event.prev_hash, hash=event.hash
        )
    return list(AuditEvent.objects.order_by("seq"))


def _run_migration_0005():
    with connection.schema_editor() as editor:
        migration.chain_again_under_the_key(django_apps, editor)


def test_events_sealed_before_the_key_are_chained_again_once_and_it_is_recorded(officer):
    old = _sealed_under_the_old_rule(officer)
    with pytest.raises(CommandError, match=rf"event #{old[0].pk}: its content no longer"):
        call_command("verify_audit")

    _run_migration_0005()

    rechain = AuditEvent.objects.get(action="audit.rechain")
    assert (rechain.outcome, rechain.detail) == (
        "success",
        {"events": 3, "old_head_seq": 3, "old_head_hash": old[-1].hash},
    )
    assert "Audit trail intact: 3 events checked, 1 awaiting sealing." in _verified()
    audit.seal()
    assert "intact: 4 events checked, 0 awaiting sealing." in _verified()
    chain = AuditEvent.objects.order_by("seq").values_list("pk", flat=True)
    assert list(chain) == [*(e.pk for e in old), rechain.pk]


def test_chaining_again_over_a_broken_old_chain_stays_reported(officer):
    _require_postgresql()
    old = _sealed_under_the_old_rule(officer)
    _tamper("UPDATE portal_auditevent SET outcome = 'failure' WHERE id = %s", [old[1].pk])

    _run_migration_0005()
    audit.seal()

    assert audit.first_broken_link() == (None, 4)
    assert AuditEvent.objects.get(action="audit.rechain").outcome == "failure"
    with pytest.raises(CommandError, match=rf"old chain was broken at event #{old[1].pk}: its"):
        call_command("verify_audit")


def test_check_deploy_warns_without_an_audit_chain_key(settings):
    from portal.checks import check_audit_chain_key

    settings.AUDIT_CHAIN_KEY_IS_SET = False
    unset = [problem.id for problem in check_audit_chain_key(None)]
    settings.AUDIT_CHAIN_KEY_IS_SET = True
    set_ = [problem.id for problem in check_audit_chain_key(None)]

    assert (unset, set_) == (["portal.W016"], [])

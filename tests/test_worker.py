"""The clock with a real Celery worker and beat (subprocesses) on Redis and PostgreSQL."""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Bulletin, Notification, Recipient
from portal.celery import app as celery_app
from portal.models import AuditEvent
from tests.factories import published_bulletin

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

SWEEP_INTERVAL = 1


class CeleryProcesses:
    """A worker and a beat, started and stopped by a test, against the test database."""

    def __init__(self, tmp_path):
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL),
            "COVERAGE_REFRESH_SECONDS": "1",
            "EMAIL_URL": "dummymail://",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
        }
        self.tmp_path = tmp_path
        self.processes = []

    def _spawn(self, name, *args):
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", *args, "--loglevel", "INFO"],
            cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append((process, log))

    def start(self):
        self.start_worker()
        self._spawn("beat", "beat", "--schedule", str(self.tmp_path / "beat-schedule"))

    def start_worker(self):
        self._spawn("worker", "worker", "--pool", "solo", "--without-gossip", "--without-mingle")

    def stop(self):
        for process, _ in self.processes:
            process.send_signal(signal.SIGTERM)
        for process, log in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        self.processes = []

    def logs(self):
        return "\n".join(p.read_text() for p in Path(self.tmp_path).glob("*.log"))


@pytest.fixture
def celery_processes(tmp_path):
    celery_app.control.purge()
    processes = CeleryProcesses(tmp_path)
    yield processes
    processes.stop()


def wait_for(condition, timeout=30, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def sleep_until(moment):
    time.sleep(max(0.0, (moment - timezone.now()).total_seconds()))


def feed_ids(client):
    return [b.pk for b in client.get(reverse("bulletins:feed")).context["bulletins"]]


def all_sent(bulletin, event):
    rows = Notification.objects.filter(event__bulletin=bulletin, event__event=event)
    return rows.exists() and not rows.filter(sent_at__isnull=True).exists()


def test_ended_bulletin_leaves_the_feed_with_no_worker_and_is_recorded_once_on_catch_up(
    client, sergeant, officer, celery_processes
):
    ends_at = timezone.now() + timedelta(seconds=3)
    bulletin = published_bulletin(sergeant, sergeant.unit, expires_at=ends_at)
    client.force_login(officer)
    assert bulletin.pk in feed_ids(client)

    sleep_until(ends_at + timedelta(milliseconds=100))
    gone_without_worker = bulletin.pk not in feed_ids(client)
    status_without_worker = Bulletin.objects.get(pk=bulletin.pk).status
    celery_processes.start()
    wait_for(
        lambda: Bulletin.objects.get(pk=bulletin.pk).status == Bulletin.Status.EXPIRED,
        message="the sweep to record the expiry",
    )
    wait_for(lambda: all_sent(bulletin, "ended"), message="ended emails")
    time.sleep(3 * SWEEP_INTERVAL)

    assert gone_without_worker
    assert status_without_worker == Bulletin.Status.IN_FORCE
    assert (
        AuditEvent.objects.filter(action="bulletin.expire", object_id=str(bulletin.pk)).count() == 1
    )
    recipients = set(Recipient.objects.filter(bulletin=bulletin).values_list("user_id", flat=True))
    ended = list(
        Notification.objects.filter(event__bulletin=bulletin, event__event="ended").values_list(
            "user_id", flat=True
        )
    )
    assert sorted(ended) == sorted(recipients)
    assert len(recipients) == 2


def test_watched_coverage_figures_follow_acknowledgements_on_a_real_worker(
    client, admin, sergeant, officer, celery_processes
):
    from bulletins import coverage
    from bulletins.services import reading

    order = published_bulletin(admin, sergeant.unit, priority=1)
    client.force_login(admin)
    url = reverse("bulletins:coverage", args=[order.pk])
    before = client.get(url).content.decode()  # computes the figures and marks them watched
    celery_processes.start()
    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())

    def kept_acknowledged():
        entry = cache.get(coverage._key(order.pk, coverage.scope_of(admin)))
        return re.search(r"<dt>Acknowledged</dt><dd>(\d+)", entry["html"])[1]

    wait_for(lambda: kept_acknowledged() == "1", message="the workers to compute the figures")
    with CaptureQueriesContext(connection) as queries:
        after = client.get(url).content.decode()

    assert "<dt>Acknowledged</dt><dd>0" in before
    assert "<dt>Acknowledged</dt><dd>1" in after
    assert not any("GROUP BY" in query["sql"] for query in queries.captured_queries)


def test_running_worker_records_expiry_within_one_sweep_interval(
    client, sergeant, officer, celery_processes
):
    celery_processes.start()
    warm_up = published_bulletin(
        sergeant, sergeant.unit, title="Warm-up", expires_at=timezone.now() + timedelta(seconds=1)
    )
    wait_for(lambda: Bulletin.objects.get(pk=warm_up.pk).status == Bulletin.Status.EXPIRED,
             message="the worker to start")  # fmt: skip
    ends_at = timezone.now() + timedelta(seconds=3)
    bulletin = published_bulletin(sergeant, sergeant.unit, expires_at=ends_at)

    wait_for(lambda: Bulletin.objects.get(pk=bulletin.pk).status == Bulletin.Status.EXPIRED,
             timeout=3 + 5 * SWEEP_INTERVAL, message="the expiry")  # fmt: skip

    event = AuditEvent.objects.get(action="bulletin.expire", object_id=str(bulletin.pk))
    lateness = (event.at - ends_at).total_seconds()
    assert 0 <= lateness <= SWEEP_INTERVAL + 1.5, celery_processes.logs()[-2000:]


def test_scheduled_bulletin_becomes_visible_on_time_and_notifies_once(
    client, sergeant, officer, celery_processes
):
    celery_processes.start()
    takes_effect = timezone.now() + timedelta(seconds=3)
    bulletin = published_bulletin(sergeant, sergeant.unit, effective_at=takes_effect)
    client.force_login(officer)

    before = bulletin.pk in feed_ids(client)
    sleep_until(takes_effect)
    after = bulletin.pk in feed_ids(client)
    wait_for(lambda: all_sent(bulletin, "published"), message="publication emails")
    time.sleep(2 * SWEEP_INTERVAL)

    assert (before, after) == (False, True)
    assert (
        AuditEvent.objects.filter(action="bulletin.take_effect", object_id=str(bulletin.pk)).count()
        == 1
    )
    published = Notification.objects.filter(event__bulletin=bulletin, event__event="published")
    assert sorted(published.values_list("user_id", flat=True)) == sorted([officer.pk, sergeant.pk])


def test_reminders_and_escalation_follow_the_cadence_on_a_real_worker(
    admin, agency, precinct17, officer, sergeant, celery_processes
):
    from bulletins.models import Reminder
    from bulletins.services import reading
    from bulletins.tasks import sweep_task

    t0 = timezone.now()
    order = published_bulletin(admin, precinct17, now=t0, priority=1)
    reading.acknowledge(order.pk, user=sergeant, version_number=1, now=t0)
    celery_processes.start_worker()

    def sweep_at(minutes):
        sweep_task.delay(now=(t0 + timedelta(minutes=minutes)).isoformat())

    def steps():
        return list(
            Reminder.objects.filter(recipient__bulletin=order, recipient__user=officer)
            .order_by("step")
            .values_list("step", flat=True)
        )

    sweep_at(14)
    sweep_at(15)
    sweep_at(16)
    wait_for(lambda: steps() == [0], message="the reminder")
    reading.acknowledge(order.pk, user=officer, version_number=1, now=t0 + timedelta(minutes=20))
    sweep_at(30)
    sweep_at(45)
    marker = published_bulletin(
        admin, precinct17, title="Marker", expires_at=t0 + timedelta(minutes=46)
    )
    sweep_at(47)
    wait_for(lambda: Bulletin.objects.get(pk=marker.pk).status == Bulletin.Status.EXPIRED,
             message="the later sweeps to run")  # fmt: skip

    assert steps() == [0]
    assert not Reminder.objects.filter(recipient__bulletin=order, recipient__user=sergeant).exists()
    reminded = Notification.objects.filter(event__bulletin=order, event__event="reminder")
    wait_for(lambda: reminded.filter(sent_at__isnull=False).count() == 1, message="the email")
    assert list(reminded.values_list("user_id", flat=True)) == [officer.pk]


def test_a_worker_keeps_its_database_connection_between_tasks_as_a_web_process_does():
    from types import SimpleNamespace

    from celery.fixups.django import DjangoWorkerFixup

    from portal.celery import close_old_connections

    # Celery's fix-up would close the connection around every task without this.
    assert DjangoWorkerFixup(celery_app).db_reuse_max == settings.CELERY_DB_REUSE_MAX > 0
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    connection.ensure_connection()
    opened = connection.connection

    close_old_connections(task=task)
    assert connection.connection is opened  # younger than CONN_MAX_AGE: kept

    connection.close_at = time.monotonic() - 1
    eager = SimpleNamespace(request=SimpleNamespace(is_eager=True))
    close_old_connections(task=eager)
    assert connection.connection is opened  # an eager task is its caller's business

    close_old_connections(task=task)
    assert connection.connection is None  # too old: closed, the next task connects afresh

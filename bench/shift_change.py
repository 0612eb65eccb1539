"""Shift change at agency scale: the portal against its floor (and a peer), same run, same
PostgreSQL. `make bench` runs it; it prints one table and writes it to bench/results.md.

    .venv/bin/python bench/shift_change.py [--officers 36000] [--runs 5] [--history 50]

Phases: publish (service through a Celery worker / bare INSERT ... SELECT / notify.send of
django-notifications-community), feed and acknowledge over HTTP (gunicorn with
docs/deploy/gunicorn.conf.py and production settings, wrk on loopback), SQL queries per
request, the coverage dashboard (with 50 and with 0 historical bulletins, the second in a
clone of the bench database), the expiry sweep, and the push fan-out (bench/push.py). See
bench/README.md.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
# Redis database 1: the test suite and `make run` use database 0, and the bench purges its queue.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("CACHE_KEY_PREFIX", "portal_bench")
sys.path.insert(0, str(REPO))

import agency  # noqa: E402
import answers  # noqa: E402
import push  # noqa: E402

PORT = 8071
BASE = f"http://127.0.0.1:{PORT}"
HISTORY_TITLE = "[history]"
NO_HISTORY_SUFFIX = "_nohistory"
GUNICORN_CONF = REPO / "docs/deploy/gunicorn.conf.py"
VENV_BIN = Path(sys.executable).parent
EXPIRY_INTERVAL = 10


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officers", type=int, default=36000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--dashboard-only", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def med(values, digits=0, unit=""):
    """'median (min-max)'."""
    fmt = f"{{:.{digits}f}}"
    return (
        f"{fmt.format(statistics.median(values))}{unit} "
        f"({fmt.format(min(values))}-{fmt.format(max(values))})"
    )


# --- data ------------------------------------------------------------------------------------


def officers():
    from portal.models import User

    return list(
        User.objects.filter(email__regex=agency.GENERATED_EMAILS, is_active=True).order_by("pk")
    )


def draft(admin, root, label, **fields):
    from django.utils import timezone

    from bulletins.services import authoring

    values = {
        "title": f"{agency.BENCH_TITLE} {label}",
        "instruction": "Work in pairs on every post and every tour. No solo posts.",
        "body": "Following the attack on police officers, **there will be no solo posts**.",
        "kind": "order", "priority": 1, "to_sworn": True, "to_auxiliary": True,
        "to_civilian": True, "supervisors_only": False, "effective_at": None, "expires_at": None,
    }  # fmt: skip
    values.update(fields)
    return authoring.save_draft(by=admin, targets=[(root, True)], now=timezone.now(), **values)


def publish_inline(admin, root, label, **fields):
    from django.conf import settings
    from django.utils import timezone

    from bulletins.services import authoring

    limit, settings.FAN_OUT_INLINE_LIMIT = settings.FAN_OUT_INLINE_LIMIT, 10**9
    try:
        bulletin = draft(admin, root, label, **fields)
        return authoring.publish_bulletin(
            bulletin, by=admin, now=timezone.now(), approved_by=agency.approver_user()
        )
    finally:
        settings.FAN_OUT_INLINE_LIMIT = limit


def acknowledge_share(bulletin, share_percent, *, minutes=90):
    """Mark `share_percent` of a bulletin's recipients as having acknowledged (spread over
    `minutes`), with their receipts, in two statements: the bench's shortcut for history."""
    from django.db import connection, transaction

    version = bulletin.versions.get(number=1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE bulletins_recipient SET acknowledged_version = 1, "
            "first_opened_at = added_at + (user_id %% 60) * interval '1 minute', "
            "acknowledged_at = added_at + (user_id %% %s) * interval '1 minute' "
            "WHERE bulletin_id = %s AND user_id %% 100 < %s",
            [minutes, bulletin.pk, share_percent],
        )
        cursor.execute(
            "INSERT INTO bulletins_receipt (bulletin_id, version_id, user_id, opened_at, "
            "acknowledged_at, statement, content_hash, auth_method, user_agent) "
            "SELECT bulletin_id, %s, user_id, first_opened_at, acknowledged_at, "
            "'I have read and understand this order.', %s, 'password', 'bench' "
            "FROM bulletins_recipient WHERE bulletin_id = %s AND acknowledged_version = 1 "
            "ON CONFLICT DO NOTHING",
            [version.pk, version.content_hash, bulletin.pk],
        )


def ensure_history(count):
    """`count` agency-wide Orders that ended, with recipients and 60% acknowledgements."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from bulletins.models import Bulletin

    have = Bulletin.objects.filter(title__startswith=HISTORY_TITLE).count()
    if have >= count:
        return have
    admin, root = agency.admin_user(), agency.agency_root()
    print(f"adding historical bulletins: {have} -> {count} ...", flush=True)
    for number in range(have, count):
        bulletin = publish_inline(admin, root, f"order {number}")
        acknowledge_share(bulletin, 60)
        start = timezone.now() - timedelta(days=count - number + 1)
        Bulletin.objects.filter(pk=bulletin.pk).update(
            title=f"{HISTORY_TITLE} Order {number}", status=Bulletin.Status.EXPIRED,
            effective_at=start, published_at=start, recipients_written_at=start,
            expires_at=start + timedelta(hours=36), ended_at=start + timedelta(hours=36),
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) bulletins_recipient")
        cursor.execute("VACUUM (ANALYZE) bulletins_receipt")
    return count


def ensure_clone_without_history():
    """portal_bench_nohistory: the same agency with no historical bulletins (made once, from
    the bench database before history is added, or by deleting history from a copy)."""
    import psycopg
    from django.db import connections

    from bulletins.models import Bulletin

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    clone = name + NO_HISTORY_SUFFIX
    maintenance = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [clone]).fetchone():
            return url.rsplit("/", 1)[0] + "/" + clone
        had_history = Bulletin.objects.filter(title__startswith=HISTORY_TITLE).exists()
        connections.close_all()
        print(f"cloning {name} -> {clone} ...", flush=True)
        conn.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{name}"')
    clone_url = url.rsplit("/", 1)[0] + "/" + clone
    if had_history:
        subprocess.run(
            [sys.executable, "-c", "import agency, sys; agency.setup(officers=0); "
             "from bulletins.models import Bulletin; import agency as a; "
             "a.BENCH_TITLE = '[history]'; print(a.delete_bench_bulletins())"],
            cwd=BENCH, env={**os.environ, "DATABASE_URL": clone_url}, check=True,
        )  # fmt: skip
    return clone_url


# --- sessions --------------------------------------------------------------------------------


def make_sessions(users, path=None):
    """A signed-in session per user, made directly (as the sign-in form would leave it): returns
    [(session key, CSRF secret)] and writes them to `path` for wrk."""
    from django.conf import settings
    from django.contrib.sessions.backends.cached_db import SessionStore as CachedSessionStore
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.cache import caches
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from portal import sessions
    from portal.middleware import MFA_ENROLLED

    store, now = SessionStore(), time.time()
    expires = timezone.now() + timezone.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    rows, pairs = [], []
    for user in users:
        data = {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": settings.AUTHENTICATION_BACKENDS[0],
            "_auth_user_hash": user.get_session_auth_hash(),
            "account_authentication_methods": [
                {"method": "password", "at": now, "reauthenticated": True}
            ],
            "account_authentication_methods_user": str(user.pk),
            sessions.SIGNED_IN_AT: now,
            sessions.LAST_ACTIVE_AT: now,
            MFA_ENROLLED: user.pk,
        }
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
        pairs.append((key, get_random_string(32)))
    Session.objects.bulk_create(rows, batch_size=2000)
    # The sign-in form saves through the cached_db engine: the session is in the cache too.
    cache = caches[settings.SESSION_CACHE_ALIAS]
    prefix = CachedSessionStore.cache_key_prefix
    for start in range(0, len(rows), 2000):
        cache.set_many(
            {prefix + row.session_key: store.decode(row.session_data)
             for row in rows[start:start + 2000]},
            settings.SESSION_COOKIE_AGE,
        )  # fmt: skip
    if path:
        Path(path).write_text("".join(f"{key} {csrf}\n" for key, csrf in pairs))
    return pairs


# --- processes -------------------------------------------------------------------------------


def server_env():
    return {
        **os.environ,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESS_LOG": "",
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
    }


def start(command, log_name):
    log = open(Path(tempfile.gettempdir()) / f"bench-{log_name}.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        command, cwd=REPO, env=server_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def start_gunicorn():
    import urllib.request

    process = start(
        [str(VENV_BIN / "gunicorn"), "portal.wsgi", "--config", str(GUNICORN_CONF)], "gunicorn"
    )
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"{BASE}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError("gunicorn did not answer /healthz (see /tmp/bench-gunicorn.log)")


def start_worker():
    process = start(
        [str(VENV_BIN / "celery"), "-A", "portal", "worker", "--pool", "solo",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING"], "worker",
    )  # fmt: skip
    time.sleep(4)
    return process


def wrk(sessions_file, path, *, connections, seconds=None, limit=0, offset=0, method="GET",
        body="", expect=200, expect_location=""):  # fmt: skip
    env = {
        **os.environ, "WRK_SESSIONS": str(sessions_file), "WRK_PATH": path,
        "WRK_METHOD": method, "WRK_BODY": body, "WRK_EXPECT": str(expect),
        "WRK_EXPECT_LOCATION": expect_location, "WRK_LIMIT": str(limit),
        "WRK_OFFSET": str(offset),
    }  # fmt: skip
    done = Path(tempfile.mkstemp(prefix="wrk-done-")[1])
    done.unlink()
    env["WRK_DONE_FILE"] = str(done)
    duration = f"{seconds}s" if seconds else "900s"
    process = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}", "--timeout", "10s",
         "-s", str(BENCH / "sessions.lua"), BASE],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while limit and process.poll() is None and not done.exists():
        time.sleep(0.05)
    if limit and process.poll() is None:
        process.send_signal(signal.SIGINT)
    out = process.communicate()[0]
    done.unlink(missing_ok=True)
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    figures = json.loads(line.removeprefix("WRK_JSON "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    if figures["bad"] or figures["socket_errors"]:
        print(f"  ! {path}: {figures['bad']} bad responses, {figures['socket_errors']} errors")
    return figures


# --- phases ----------------------------------------------------------------------------------


def purge_notification_queue():
    import redis
    from django.conf import settings

    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(
        *{route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    )


def phase_publish(runs):
    """Portal (HTTP request -> the task's rows committed), floor, peer; interleaved."""
    import http.client

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone
    from notifications.signals import notify

    from bulletins.models import Bulletin
    from bulletins.services import approval

    admin, root = agency.admin_user(), agency.agency_root()
    expected = get_user_model().objects.filter(agency=root, is_active=True).count()
    # An agency-wide Order goes out when its approver approves it (issue 21): the request timed
    # is the approver's Approve, which publishes it.
    (session, csrf), = make_sessions([agency.approver_user()])  # fmt: skip
    worker, server = start_worker(), start_gunicorn()
    portal, request_ms, floor, peer = [], [], [], []
    try:
        for run in range(runs + 1):
            bulletin = draft(admin, root, f"publish {run}")
            approval.submit_for_approval(bulletin, by=admin, now=timezone.now())
            conn = http.client.HTTPConnection("127.0.0.1", PORT)
            started = time.perf_counter()
            conn.request(
                "POST", f"/bulletins/{bulletin.pk}/approve", body=f"csrfmiddlewaretoken={csrf}",
                headers={"Cookie": f"sessionid={session}; csrftoken={csrf}",
                         "Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            response = conn.getresponse()
            response.read()
            answered = time.perf_counter()
            assert response.status == 302, response.status
            while not Bulletin.objects.filter(
                pk=bulletin.pk, recipients_written_at__isnull=False
            ).exists():
                time.sleep(0.005)
            done = time.perf_counter()
            told = bulletin.recipients.count()
            assert told == expected, (told, expected)

            floor_draft = draft(admin, root, f"floor {run}")

            def floor_insert(pk=floor_draft.pk):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO bulletins_recipient (bulletin_id, user_id, unit_id, added_at)"
                        " SELECT %s, id, unit_id, %s FROM portal_user"
                        " WHERE agency_id = %s AND is_active AND unit_id IS NOT NULL",
                        [pk, timezone.now(), root.pk],
                    )

            floor_seconds = agency.timed(floor_insert)
            assert floor_draft.recipients.count() == expected

            def peer_send(target=floor_draft):
                people = get_user_model().objects.filter(agency=root, is_active=True)
                with transaction.atomic():
                    notify.send(admin, recipient=people, verb="published", target=target)

            peer_seconds = agency.timed(peer_send)
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM notifications_notification")
                assert cursor.fetchone()[0] == expected
                cursor.execute("TRUNCATE notifications_notification")
            agency.delete_bench_bulletins()
            if run == 0:
                continue  # warm-up
            portal.append(done - started)
            request_ms.append((answered - started) * 1000)
            floor.append(floor_seconds)
            peer.append(peer_seconds)
            print(f"  publish run {run}: portal {done - started:.3f} s (request "
                  f"{(answered - started) * 1000:.0f} ms), floor {floor_seconds:.3f} s, "
                  f"peer {peer_seconds:.3f} s", flush=True)  # fmt: skip
    finally:
        stop(server)
        stop(worker)
        agency.purge_task_queue()
    return {"portal": portal, "request_ms": request_ms, "floor": floor, "peer": peer,
            "recipients": expected}  # fmt: skip


def feed_bulletins():
    """20 agency-wide bulletins in force (published through the service): the first is the
    "Officer safety - immediate" Order everyone acknowledges."""
    admin, root = agency.admin_user(), agency.agency_root()
    kinds = ["order", "advisory", "information", "order"]
    bulletins = [  # with the pairing order's one-question check (issue "Hearing back")
        publish_inline(admin, root, "shift change order", priority=1, questions=answers.QUESTIONS)
    ]
    for number in range(1, 20):
        bulletins.append(
            publish_inline(admin, root, f"feed {number}", kind=kinds[number % 4],
                           priority=2 + number % 2)
        )  # fmt: skip
    return bulletins


def phase_http(runs, members, tmp):
    from datetime import UTC, datetime

    from django.db import connection

    from bulletins.models import BulletinVersion, Receipt, Recipient
    from bulletins.services import reading
    from portal.models import AuditEvent

    print("publishing 20 bulletins in force ...", flush=True)
    bulletins = feed_bulletins()
    target = bulletins[0]
    target_version = target.versions.get(number=1)
    floor_bulletin = publish_inline(
        agency.admin_user(), agency.agency_root(), "floor acknowledgements", priority=2
    )
    floor_version = BulletinVersion.objects.get(bulletin=floor_bulletin, number=1)
    # Autovacuum would have analysed the bulletin tables by now (hundreds of rows written since
    # the bench began); this machine's may be off, and a table never analysed is planned as if
    # empty: the acknowledgement then found its Order among every bulletin of the agency.
    agency._vacuum("bulletins_bulletin", "bulletins_bulletinversion", "bulletins_agencypolicy")
    print(f"making {len(members)} sessions ...", flush=True)
    everyone = tmp / "sessions.txt"
    pairs = make_sessions(members, everyone)
    pool = tmp / "pool.txt"
    pool.write_text("".join(f"{key} {csrf}\n" for key, csrf in pairs[:1000]))
    cold_pool = tmp / "cold.txt"
    cold_pool.write_text("".join(f"{key} {csrf}\n" for key, csrf in pairs[1000:3000]))
    print("  (warming the feed cache of 1,000 officers)", flush=True)
    server = start_gunicorn()
    figures = {"feed": {}, "ack": {}}
    try:
        wrk(pool, "/", connections=16, limit=2000)  # warm: every officer of the pool once
        wrk(pool, "/_floor/feed", connections=16, seconds=3)
        feed = figures["feed"]
        for run in range(runs):
            for name, path in (("portal", "/"), ("floor", "/_floor/feed")):
                for conns, seconds in ((16, 5), (1, 3)):
                    result = wrk(pool, path, connections=conns, seconds=seconds)
                    feed.setdefault(f"{name}{conns}", []).append(result)
            print(f"  feed run {run + 1}: portal {feed['portal16'][-1]['rps']:.0f} req/s, "
                  f"floor {feed['floor16'][-1]['rps']:.0f} req/s", flush=True)  # fmt: skip
        # After a publication every page is stale: each officer's next view re-renders.
        for run in range(runs):
            _bump_feeds()
            result = wrk(cold_pool, "/", connections=16, limit=400, offset=400 * run)
            feed.setdefault("portal_cold16", []).append(result)
            print(f"  feed cold run {run + 1}: portal {result['rps']:.0f} req/s", flush=True)
        warm_acknowledgements(members[:2000], tmp)
        worker = start_worker()
        watcher = CoverageWatcher(target)
        watcher.start()
        slices = max(runs, 6)
        size = len(pairs) // slices
        ack = figures["ack"]
        # 500 "cannot comply" answers arrive during the burst; their emails go out meanwhile.
        reason = answers.prepare(agency.agency_root())
        mail_worker = answers.start_mail_worker()
        arrivals = answers.Arrivals(target, members[-answers.ANSWERS :], reason,
                                    seconds=len(pairs) / 400)  # fmt: skip
        arrivals.start()
        for run in range(slices):
            # Each slice's officers sign in just before it, once for the portal and once for
            # the floor, so both start from the same state: session in the cache, activity now.
            people = members[size * run : size * (run + 1) if run < slices - 1 else None]
            portal_sessions, floor_sessions = tmp / "ack-portal.txt", tmp / "ack-floor.txt"
            make_sessions(people, portal_sessions)
            portal = wrk(
                portal_sessions, f"/bulletins/{target.pk}/acknowledge", connections=16,
                method="POST", body=answers.ACK_BODY, expect=302,
                expect_location=f"/bulletins/{target.pk}/", limit=len(people),
            )  # fmt: skip
            make_sessions(people[:size], floor_sessions)
            floor = wrk(
                floor_sessions, f"/_floor/acknowledge/{floor_version.pk}", connections=16,
                method="POST", body="x=1", expect=204, limit=min(size, len(people)),
            )  # fmt: skip
            ack.setdefault("portal", []).append(portal)
            ack.setdefault("floor", []).append(floor)
            print(f"  acknowledge run {run + 1}: portal {portal['rps']:.0f} req/s "
                  f"p99 {portal['p99_us'] / 1000:.0f} ms, floor {floor['rps']:.0f} req/s",
                  flush=True)  # fmt: skip
        burst_ended_at = datetime.now(UTC)
        answered = arrivals.stop()
        watcher.stop()
        stop(worker)
        figures["coverage_watch"] = watcher.figures()
        figures["answers"] = answers.figures(answered, burst_ended_at=burst_ended_at)
        stop(mail_worker)
    finally:
        stop(server)
    # The issuer counts as acknowledged at publication (a receipt "as-author"): not one of the
    # burst's acknowledgements, counted apart.
    acked = Receipt.objects.filter(version=target_version, acknowledged_at__isnull=False)
    issuers = acked.filter(auth_method=reading.AS_AUTHOR).values("user_id")
    acked = acked.exclude(auth_method=reading.AS_AUTHOR)
    events = AuditEvent.objects.filter(action="bulletin.acknowledge", object_id=str(target.pk))
    figures["ack_counts"] = {
        "sent": len(pairs),
        "receipts": acked.count(),
        "distinct_people": acked.values("user_id").distinct().count(),
        "recipients_acknowledged": Recipient.objects.filter(bulletin=target, acknowledged_version=1)
        .exclude(user_id__in=issuers)
        .count(),
        "audit_events": events.exclude(detail__has_key="as_author").count(),
        "issuer": issuers.count(),
    }
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_session")
    return figures, bulletins


class CoverageWatcher(threading.Thread):
    """A commander with the coverage page of the Order being acknowledged open, through the
    whole burst: the page fetched over HTTP every second. For each view: when it was served,
    how many acknowledgements it showed, and as of when. The workers' run is queued every
    COVERAGE_REFRESH_SECONDS, as beat does in production (beat is not run here: it would also
    seal the burst's audit events, which the floor does not write)."""

    def __init__(self, bulletin):
        super().__init__(daemon=True)
        (self.session, _), = make_sessions([agency.admin_user()])  # fmt: skip
        self.bulletin = bulletin
        self.url = f"{BASE}/bulletins/{bulletin.pk}/coverage"
        self.halt = threading.Event()
        self.views, self.error = [], None

    def run(self):
        try:
            self.watch()
        except BaseException as error:  # raised again by stop(), in the bench's thread
            self.error = error

    def watch(self):
        import re
        import urllib.request
        from datetime import UTC, datetime

        from django.conf import settings

        from bulletins.tasks import refresh_coverage_task

        as_of = re.compile(r'Figures as of <time datetime="([^"]+)">')
        acknowledged = re.compile(r"<dt>Acknowledged</dt><dd>(\d+)")
        request = urllib.request.Request(self.url, headers={"Cookie": f"sessionid={self.session}"})
        queued = 0.0
        while not self.halt.wait(1.0):
            if time.monotonic() - queued >= settings.COVERAGE_REFRESH_SECONDS:
                refresh_coverage_task.delay()
                queued = time.monotonic()
            with urllib.request.urlopen(request, timeout=10) as response:
                page = response.read().decode()
            self.views.append((datetime.now(UTC), int(acknowledged.search(page)[1]),
                               datetime.fromisoformat(as_of.search(page)[1])))  # fmt: skip

    def stop(self):
        self.halt.set()
        self.join()
        if self.error is not None:
            raise self.error

    def figures(self):
        """For each view: how old its figures were (as of -> served), and how far behind the
        acknowledgements it was (the first acknowledgement it did not show -> served; 0 when
        it showed every acknowledgement recorded by then)."""
        from bulletins.models import Recipient

        times = list(
            Recipient.objects.filter(bulletin=self.bulletin, acknowledged_at__isnull=False)
            .order_by("acknowledged_at")
            .values_list("acknowledged_at", flat=True)
        )
        ages, behind = [], []
        for served, shown, as_of in self.views:
            ages.append((served - as_of).total_seconds())
            first_missing = times[shown] if shown < len(times) else None
            late = (served - first_missing).total_seconds() if first_missing else 0.0
            behind.append(max(0.0, late))
        return {"ages": ages, "behind": behind}


def warm_acknowledgements(people, tmp):
    """Before the measured burst: `people` acknowledge an Order of its own through the portal,
    and the floor's view records theirs for a version of its own, so that neither side's first
    slice pays for its processes' first statements and the tables' cold pages."""
    from bulletins.models import BulletinVersion

    admin, root = agency.admin_user(), agency.agency_root()
    order = publish_inline(admin, root, "warm-up order", priority=2)
    floor_version = BulletinVersion.objects.get(
        bulletin=publish_inline(admin, root, "warm-up floor", priority=2), number=1
    )
    sessions = tmp / "ack-warm.txt"
    make_sessions(people, sessions)
    wrk(
        sessions, f"/bulletins/{order.pk}/acknowledge", connections=16, method="POST",
        body="version=1", expect=302, expect_location=f"/bulletins/{order.pk}/",
        limit=len(people),
    )  # fmt: skip
    wrk(
        sessions, f"/_floor/acknowledge/{floor_version.pk}", connections=16, method="POST",
        body="x=1", expect=204, limit=len(people),
    )  # fmt: skip


def _bump_feeds():
    from portal import stamps
    from portal.models import Unit

    stamps.agency_changed(*Unit.objects.get_root_nodes().values_list("pk", flat=True))


def phase_queries(bulletins, members):
    """SQL queries per request, in-process (the same middleware and views)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bulletins.models import Receipt

    officer = members[-1]
    (session, csrf), = make_sessions([officer])  # fmt: skip
    client = Client()
    client.cookies["sessionid"], client.cookies["csrftoken"] = session, csrf
    # An Order this officer has not acknowledged: the acknowledge request counted is a first
    # acknowledgement, the case that matters at shift change (not a refusal).
    target = next(b for b in bulletins[1:] if b.kind == "order")
    requests = {
        "feed (cached)": lambda: client.get("/"),
        "feed (re-rendered)": lambda: (_bump_feeds(), client.get("/"))[1],
        "feed poll (unchanged, 204)": lambda: client.get("/feed/items?etag=x"),
        "bulletin": lambda: client.get(f"/bulletins/{target.pk}/"),
        "acknowledge": lambda: client.post(
            f"/bulletins/{target.pk}/acknowledge",
            {"version": 1, "csrfmiddlewaretoken": csrf},
        ),
    }
    client.get("/")
    counts = {}
    for name, request in requests.items():
        with CaptureQueriesContext(connection) as queries:
            response = request()
        assert response.status_code in (200, 204, 302), (name, response.status_code)
        counts[name] = len(queries)
    acknowledged = Receipt.objects.filter(
        user=officer, bulletin=target, acknowledged_at__isnull=False
    ).exists()
    assert acknowledged, "the acknowledge request counted did not acknowledge"
    return counts


def phase_dashboard(runs):
    """Server time of the coverage page (in-process) and the hand-written GROUP BY: the page
    while acknowledgements arrive (served from the figures the workers computed a moment ago),
    the page computing its figures in the request (none kept, as on a first view), and the
    workers' run computing them."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bulletins import coverage
    from bulletins.caching import changes

    admin, root = agency.admin_user(), agency.agency_root()
    bulletin = publish_inline(admin, root, "coverage", priority=2)
    acknowledge_share(bulletin, 60)
    # What the recipient table's autovacuum settings (migration 0007) do within a minute of
    # 21,600 acknowledgements; this machine's autovacuum may be off.
    agency._vacuum("bulletins_recipient")
    (session, _), = make_sessions([admin])  # fmt: skip
    client = Client()
    client.cookies["sessionid"] = session
    url = f"/bulletins/{bulletin.pk}/coverage"
    kept_key = coverage._key(bulletin.pk, coverage.scope_of(admin))

    def floor():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT unit_id, acknowledged_version, count(*), count(first_opened_at), "
                "count(*) FILTER (WHERE acknowledged_at <= %s), "
                "count(*) FILTER (WHERE acknowledged_at <= %s), "
                "count(*) FILTER (WHERE acknowledged_at <= %s) "
                "FROM bulletins_recipient WHERE bulletin_id = %s GROUP BY 1, 2",
                [bulletin.effective_at + agency_minutes(m) for m in (15, 30, 60)] + [bulletin.pk],
            )
            cursor.fetchall()

    def page(path=url):
        response = client.get(path)
        assert response.status_code == 200, response.status_code

    def outstanding_page():
        page(f"/bulletins/{bulletin.pk}/outstanding")

    def changed():
        changes.recipients_changed(bulletin.pk)  # as any acknowledgement does

    def nothing_kept():
        cache.delete(kept_key)

    refreshed = []

    def workers_run():
        refreshed.append(coverage.refresh_watched())

    during, computed, worker, bare, listed = [], [], [], [], []
    page()  # the first view marks the figures as watched
    for run in range(runs + 1):
        changed()
        worker_seconds = agency.timed(workers_run)
        changed()  # acknowledgements go on arriving after the workers' run
        during_seconds = agency.timed(page)
        nothing_kept()
        computed_seconds = agency.timed(page)
        floor_seconds, list_seconds = agency.timed(floor), agency.timed(outstanding_page)
        if run:
            during.append(during_seconds)
            computed.append(computed_seconds)
            worker.append(worker_seconds)
            bare.append(floor_seconds)
            listed.append(list_seconds)
    assert all(count >= 1 for count in refreshed), refreshed
    changed()
    with CaptureQueriesContext(connection) as kept_queries:
        page()
    nothing_kept()
    with CaptureQueriesContext(connection) as queries:
        page()
    with CaptureQueriesContext(connection) as list_queries:
        outstanding_page()
    agency.delete_bench_bulletins()
    return {"portal": during, "computed": computed, "worker": worker, "floor": bare,
            "queries": len(queries), "kept_queries": len(kept_queries), "outstanding": listed,
            "outstanding_queries": len(list_queries)}  # fmt: skip


def agency_minutes(minutes):
    from datetime import timedelta

    return timedelta(minutes=minutes)


def dashboard_in(database_url, runs):
    out = subprocess.run(
        [sys.executable, __file__, "--dashboard-only", "--runs", str(runs)],
        env={**os.environ, "DATABASE_URL": database_url}, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def phase_expiry(bulletins, runs):
    """The 20 bulletins end at once, `runs` times; a beat-like tick every EXPIRY_INTERVAL s runs
    the sweep as sweep_task does. Due times fall at spread phases after a tick."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from bulletins.models import Bulletin, NotificationEvent
    from bulletins.notifications import announces
    from bulletins.services import clock
    from portal.models import AuditEvent

    ids = [b.pk for b in bulletins]
    sweeps, lateness, checks = [], [], []
    for run in range(runs):
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM bulletins_notificationevent WHERE bulletin_id = ANY(%s) "
                "AND event = 'ended'", [ids],
            )  # fmt: skip
        tick = timezone.now()
        phase = (run + 0.5) / runs
        due = tick + timedelta(seconds=phase * EXPIRY_INTERVAL)
        Bulletin.objects.filter(pk__in=ids).update(
            status=Bulletin.Status.IN_FORCE, ended_at=None, expires_at=due
        )
        swept = {}
        while not swept.get("ended"):
            tick += timedelta(seconds=EXPIRY_INTERVAL)
            time.sleep(max(0, (tick - timezone.now()).total_seconds()))
            start = time.perf_counter()
            swept = clock.sweep(timezone.now())
            seconds = time.perf_counter() - start
        events = AuditEvent.objects.filter(
            action="bulletin.expire", object_id__in=[str(pk) for pk in ids], at__gte=due
        )
        late = [(event.at - due).total_seconds() for event in events]
        sweeps.append(seconds)
        lateness.append(max(late))
        check = {
            "ended by the sweep": swept["ended"],
            "expire audit events": len(late),
            "expired": Bulletin.objects.filter(pk__in=ids, status=Bulletin.Status.EXPIRED).count(),
            "ended outbox rows, one per announced bulletin": NotificationEvent.objects.filter(
                bulletin_id__in=ids, event="ended"
            ).count()
            + sum(not announces(b) for b in bulletins),
            "ended by a second sweep": len(ids) - clock.sweep(timezone.now())["ended"],
        }
        if set(check.values()) != {len(ids)}:
            print(f"  ! expiry checks: {check}")
        checks.append(set(check.values()) == {len(ids)})
        print(f"  expiry run {run + 1}: sweep {seconds:.3f} s, lateness max {max(late):.1f} s",
              flush=True)  # fmt: skip
    return {"sweep": sweeps, "lateness": lateness, "ok": all(checks)}


# --- report ----------------------------------------------------------------------------------


def ratio(portal, floor):
    return statistics.median(portal) / statistics.median(floor)


def verdict(ok):
    return "met" if ok else "**missed**"


def report(p, http, queries, dash, dash_empty, expiry, args):
    feed, ack, counts = http["feed"], http["ack"], http["ack_counts"]

    def col(results, key, scale=1.0, digits=0):
        return med([r[key] * scale for r in results], digits)

    publish_ratio = ratio(p["portal"], p["floor"])
    peer_ratio = statistics.median(p["peer"]) / statistics.median(p["portal"])
    feed_ratio = ratio([r["rps"] for r in feed["portal16"]], [r["rps"] for r in feed["floor16"]])
    cold_ratio = ratio(
        [r["rps"] for r in feed["portal_cold16"]], [r["rps"] for r in feed["floor16"]]
    )
    feed_p50_1 = statistics.median([r["p50_us"] / 1000 for r in feed["portal1"]])
    ack_ratio = ratio([r["rps"] for r in ack["portal"]], [r["rps"] for r in ack["floor"]])
    ack_p99 = statistics.median([r["p99_us"] / 1000 for r in ack["portal"]])
    dash_ratio = ratio(dash["portal"], dash["floor"])
    computed_ratio = ratio(dash["computed"], dash["floor"])
    worker_ratio = ratio(dash["worker"], dash["floor"])
    flat = statistics.median(dash["computed"]) / statistics.median(dash_empty["computed"])
    from django.conf import settings

    from bulletins import coverage

    watch, every = http["coverage_watch"], settings.COVERAGE_REFRESH_SECONDS
    ages, behind = watch["ages"], watch["behind"]
    stale = coverage.stale_seconds()
    lossless = (
        counts["receipts"] == counts["sent"] == counts["distinct_people"]
        == counts["recipients_acknowledged"] == counts["audit_events"]
    )  # fmt: skip
    late_ok = max(expiry["lateness"]) <= EXPIRY_INTERVAL + 5
    ms = 1000
    rows = [
        "| operation | the portal | its floor in the same run | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| publish one agency-wide Order to {p['recipients']:,} (the approver's Approve -> every "
        f"recipient row committed) | {med([v * ms for v in p['portal']])} ms; the request itself "
        f"{med(p['request_ms'])} ms | bare INSERT ... SELECT {med([v * ms for v in p['floor']])}"
        f" ms | {publish_ratio:.2f}x | <= 1.25x; request <= 150 ms | "
        f"{verdict(publish_ratio <= 1.25 and statistics.median(p['request_ms']) <= 150)} |",
        f"| the same publish by the peer | - | notify.send(recipient=<{p['recipients']:,} users>)"
        f" {med([v * ms for v in p['peer']])} ms | portal {peer_ratio:.2f}x faster | >= 4x | "
        f"{verdict(peer_ratio >= 4)} |",
        f"| officer feed, 20 in force, full layout, 16 connections | {col(feed['portal16'], 'rps')}"
        f" req/s, p50 {col(feed['portal16'], 'p50_us', 1 / ms, 1)} ms, p99 "
        f"{col(feed['portal16'], 'p99_us', 1 / ms, 1)} ms | bare view "
        f"{col(feed['floor16'], 'rps')} req/s, p50 {col(feed['floor16'], 'p50_us', 1 / ms, 1)} "
        f"ms, p99 {col(feed['floor16'], 'p99_us', 1 / ms, 1)} ms | {feed_ratio:.2f}x | >= 1.0x "
        f"| {verdict(feed_ratio >= 1.0)} |",
        f"| officer feed, 1 connection | p50 {col(feed['portal1'], 'p50_us', 1 / ms, 1)} ms, "
        f"{col(feed['portal1'], 'rps')} req/s | p50 {col(feed['floor1'], 'p50_us', 1 / ms, 1)} ms"
        f" | - | p50 <= 15 ms | {verdict(feed_p50_1 <= 15)} |",
        f"| officer feed, cache cold (every request re-renders), 16 connections | "
        f"{col(feed['portal_cold16'], 'rps')} req/s, p99 "
        f"{col(feed['portal_cold16'], 'p99_us', 1 / ms, 1)} ms | (as above) | "
        f"{cold_ratio:.2f}x | (for information) | |",
        "| acknowledge (POST, session, CSRF, audit event; the one-question check answered first: "
        "attempt and its audit event), 16 connections | "
        f"{col(ack['portal'], 'rps')} req/s, p99 {col(ack['portal'], 'p99_us', 1 / ms, 1)} ms | "
        f"bare INSERT ... ON CONFLICT {col(ack['floor'], 'rps')} req/s, p99 "
        f"{col(ack['floor'], 'p99_us', 1 / ms, 1)} ms | {ack_ratio:.2f}x | >= 0.6x; p99 <= 100 "
        f"ms | {verdict(ack_ratio >= 0.6 and ack_p99 <= 100)} |",
        f"| {counts['sent']:,} acknowledgements in a burst | {counts['receipts']:,} receipts, "
        f"{counts['distinct_people']:,} people, {counts['recipients_acknowledged']:,} recipients "
        f"acknowledged, {counts['audit_events']:,} audit events (besides the issuer's "
        f"{counts.get('issuer', 0)}, counted at publication) | - | - | 0 lost, 0 duplicated "
        f"| {verdict(lossless)} |",
        f"| coverage dashboard, {p['recipients']:,} recipients, {args.history} historical "
        "bulletins, while acknowledgements arrive (figures the workers computed a moment ago) | "
        f"{med([v * ms for v in dash['portal']], 1)} ms server time | hand-written "
        f"GROUP BY {med([v * ms for v in dash['floor']], 1)} ms | {dash_ratio:.2f}x | <= 1.5x | "
        f"{verdict(dash_ratio <= 1.5)} |",
        "| the same, figures computed in the request (a first view; or workers more than "
        f"{stale} s behind) | {med([v * ms for v in dash['computed']], 1)} ms server time | "
        f"(as above) | {computed_ratio:.2f}x | (for information) | |",
        "| the workers' run computing them again (one bulletin and scope) | "
        f"{med([v * ms for v in dash['worker']], 1)} ms | (as above) | {worker_ratio:.2f}x | "
        "(for information) | |",
        f"| figures computed with 0 historical bulletins | "
        f"{med([v * ms for v in dash_empty['computed']], 1)}"
        f" ms | {med([v * ms for v in dash_empty['floor']], 1)} ms | {flat:.2f}x (50 vs 0) | "
        f"<= 1.2x | {verdict(flat <= 1.2)} |",
        f"| a commander's coverage page during the {counts['sent']:,} acknowledgements "
        f"(fetched every second, {len(ages)} times; workers every {every} s): how far behind "
        "the acknowledgements it was (the first one it did not show -> served) | median "
        f"{statistics.median(behind):.1f} s, at most {max(behind):.1f} s; its figures as of "
        f"{statistics.median(ages):.1f} s (at most {max(ages):.1f} s) before | - | - | "
        f"<= {stale} s, the most the page shows changed figures | "
        f"{verdict(max(behind) <= stale)} |",
        "| outstanding list (its own page: the first 50, by unit, of the 40% not yet "
        f"acknowledged) | {med([v * ms for v in dash['outstanding']], 1)} ms server time "
        f"| - | - | (for information) | |",
        f"| expiry sweep, 20 bulletins x {p['recipients']:,} recipients due at once | sweep "
        f"{med([v * ms for v in expiry['sweep']])} ms; lateness due -> recorded "
        f"{med(expiry['lateness'], 1)} s (sweep every {EXPIRY_INTERVAL} s) | - | - | lateness "
        f"<= interval + 5 s | {verdict(late_ok and expiry['ok'])} |",
    ]
    rows += answers.report_rows(http["answers"], counts["sent"])
    query_line = ", ".join(f"{name} {count}" for name, count in queries.items())
    return rows, query_line


def main():
    args = arguments()
    agency.setup(officers=args.officers)
    if args.dashboard_only:
        print(json.dumps(phase_dashboard(args.runs)))
        return
    started = time.time()
    agency.delete_bench_bulletins()
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    clone_url = ensure_clone_without_history()
    ensure_history(args.history)
    members = officers()[: args.officers]
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    try:
        print("publish ...", flush=True)
        publish = phase_publish(args.runs)
        print("feed and acknowledge over HTTP ...", flush=True)
        http, bulletins = phase_http(args.runs, members, tmp)
        queries = phase_queries(bulletins, members)
        print("expiry ...", flush=True)
        expiry = phase_expiry(bulletins, args.runs)
        agency.delete_bench_bulletins()
        print("coverage dashboard ...", flush=True)
        dash = dashboard_in(os.environ["DATABASE_URL"], args.runs)
        dash_empty = dashboard_in(clone_url, args.runs)
        print("push fan-out ...", flush=True)
        pushed = push.run(args.officers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        agency.delete_bench_bulletins()
        agency.purge_task_queue()
        purge_notification_queue()
    queries["coverage dashboard (while acknowledgements arrive)"] = dash["kept_queries"]
    queries["coverage dashboard (computed in the request)"] = dash["queries"]
    queries["outstanding list"] = dash["outstanding_queries"]
    rows, query_line = report(publish, http, queries, dash, dash_empty, expiry, args)
    rows += push.report_rows(pushed)
    write_results(rows, query_line, args, time.time() - started)


def write_results(rows, query_line, args, seconds):
    import platform

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    header = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} "
        f"cores ({platform.machine()}), PostgreSQL {pg}, Redis, gunicorn with "
        f"docs/deploy/gunicorn.conf.py, wrk on loopback. {args.officers:,} generated officers, "
        f"{args.history} historical agency-wide bulletins with 60% acknowledgements. Each figure: "
        f"median (min-max) over {args.runs} runs (acknowledge: {max(args.runs, 6)} slices of "
        f"one burst). Bench took {seconds / 60:.1f} min."
    )
    text = "\n".join(
        ["# Shift change at agency scale: results", "", header, "", *rows, "",
         f"SQL queries per request: {query_line}.", ""]
    )  # fmt: skip
    (BENCH / "results.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()

"""Push fan-out at agency scale (issue 22, Performance): an agency-wide "Officer safety -
immediate" Order pushed to every officer's device, against its floor in the same run.

    .venv/bin/python bench/push.py [--subscriptions 36000] [--runs 3] [--kill-after N]

`bench/shift_change.py` hooks this in (`make bench`); on its own it runs in the database
`portal_bench_push` (DATABASE_URL overrides) and Redis database 2, and only prints its rows.

- A local push service (`bench/push_service.py`, a process of its own) answers every push with
  201 at once and records each one (endpoint, time of arrival, body).
- Every officer has one device (a PushSubscription) on it: `http://127.0.0.1:PORT/p/<user id>`,
  with valid keys (one P-256 key pair and auth secret shared by all: the bench keeps the private
  key and decrypts what arrived).
- **Portal**: the Order is published through the services (`save_draft`, `publish_bulletin`
  with its approver); a real Celery worker (`--pool solo`, started as a subprocess) writes the
  recipient rows, fans the outbox event out and sends the pushes. Timed from the publish call
  to the first 1,000 and to the last push the service accepted.
- **Floor**: the same plaintext (decrypted from what the portal sent), the same http_ece
  aes128gcm encryption and POST with the same headers as `bulletins.services.push`, one VAPID
  signature, in a plain loop on one keep-alive requests session: no Django, no Celery, no
  database.
- **Kill test**: a second Order; the worker is killed with SIGKILL once the service has seen
  `--kill-after` pushes, started again, and the sending safety net is queued as beat does until
  every delivery row is settled. At the service: no device got the event twice (counted per
  endpoint and per the decrypted payload's tag); in the database: how many rows were sent and
  how many ended 'unknown' (claimed by the dead worker).

Email delivery is left out, as in the rest of the bench: `send_notifications_task` goes to a
queue nobody consumes here.
"""

import argparse
import base64
import json
import os
import signal
import statistics
import sys
import time
import traceback
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ.setdefault("CACHE_KEY_PREFIX", "portal_bench_push")
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

PORT = 8072
STUB = f"http://127.0.0.1:{PORT}"
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_push"
PUSH_QUEUE = "bench-push"
UNCONSUMED_QUEUE = "bench-notifications"
WORKER_NAME = "bench-push@"
FIRST = 1000
RATIO_TARGET = 1.5
TIMEOUT_S = 900
RUNS = 3


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def push_environment():
    """The environment of the workers this bench starts (this process sends nothing through
    the portal, so the other phases of `make bench` run with push off, as before):

    - a VAPID key pair for the run, unless one is set: push is off without keys;
    - the local push service is plain http on 127.0.0.1, allowed only when listed (the
      portal's guard against being aimed inside the network, `push.endpoint_error`);
    - a row claimed by a dead worker is settled ("unknown") once its lease ends: 15 minutes
      in production, 30 s here (a live worker holds a batch of 500 for about a second)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    os.environ.setdefault("PUSH_SERVICE_HOSTS", "127.0.0.1")
    os.environ.setdefault("PUSH_LEASE_SECONDS", "30")
    os.environ.setdefault("VAPID_SUBJECT", "mailto:bench@portal.invalid")
    if os.environ.get("VAPID_PRIVATE_KEY"):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    os.environ["VAPID_PRIVATE_KEY"] = _b64(key.private_numbers().private_value.to_bytes(32))
    os.environ["VAPID_PUBLIC_KEY"] = _b64(public)


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=36000)
    parser.add_argument(
        "--kill-after", type=int, default=0,
        help="pushes seen before the worker is killed (default: mid-batch, about a third)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the push service ------------------------------------------------------------------------


def stub(path, method="GET"):
    request = urllib.request.Request(STUB + path, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def start_stub():
    import shift_change

    process = shift_change.start(
        [sys.executable, str(BENCH / "push_service.py"), "--port", str(PORT)], "push-service"
    )
    for _ in range(300):  # up to 30 s: a busy machine starts Python slowly
        try:
            stub("/_count")
            return process
        except OSError:
            time.sleep(0.1)
    shift_change.stop(process)
    raise RuntimeError("the push service did not answer (see /tmp/bench-push-service.log)")


class Device:
    """The one receiving key pair and auth secret every bench subscription shares."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.p256dh = _b64(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        self.auth_secret = os.urandom(16)
        self.auth = _b64(self.auth_secret)

    def decrypt(self, body):
        """The plaintext of one message, as the browser would read it."""
        import http_ece

        return http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth_secret, version="aes128gcm"
        )


def arrived_bodies(device, limit=None):
    """[(subscription number, plaintext bytes)] of what the service holds (the first `limit`)."""
    rows = stub("/_bodies" + (f"?limit={limit}" if limit else ""))["bodies"]
    return [(n, device.decrypt(base64.urlsafe_b64decode(body))) for n, body in rows]


# --- data ------------------------------------------------------------------------------------


def endpoint_prefix():
    return f"{STUB}/p/"


def delete_subscriptions():
    """The bench's devices (those on the local service) and their delivery rows, raw SQL."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM bulletins_pushdelivery WHERE subscription_id IN (SELECT id FROM "
            "portal_pushsubscription WHERE endpoint LIKE %s)", [endpoint_prefix() + "%"],
        )  # fmt: skip
        cursor.execute(
            "DELETE FROM portal_pushsubscription WHERE endpoint LIKE %s", [endpoint_prefix() + "%"]
        )


def make_subscriptions(count, device):
    """One device per generated officer (the first `count` by id), in one INSERT ... SELECT."""
    import agency
    from django.db import connection, transaction
    from django.utils import timezone

    delete_subscriptions()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO portal_pushsubscription (user_id, endpoint, p256dh, auth, name, "
            "created_at) SELECT id, %s || id, %s, %s, 'Chrome on Android', %s FROM portal_user "
            "WHERE is_active AND email ~ %s ORDER BY id LIMIT %s",
            [endpoint_prefix(), device.p256dh, device.auth, timezone.now(),
             agency.GENERATED_EMAILS, count],
        )  # fmt: skip
        made = cursor.rowcount
    agency._vacuum("portal_pushsubscription")
    return made


def subscriptions():
    """[(endpoint, p256dh, auth)] of the bench's devices, for the floor."""
    from portal.models import PushSubscription

    return list(
        PushSubscription.objects.filter(endpoint__startswith=endpoint_prefix())
        .order_by("pk")
        .values_list("endpoint", "p256dh", "auth")
    )


# --- the worker ------------------------------------------------------------------------------


def push_routes():
    """Outbox delivery and pushes on the push worker's queue; email sending on a queue nobody
    consumes (the bench does not measure email)."""
    from django.conf import settings

    routes = dict(getattr(settings, "CELERY_TASK_ROUTES", {}) or {})
    routes["bulletins.tasks.deliver_event_task"] = {"queue": PUSH_QUEUE}
    routes["bulletins.tasks.send_notifications_task"] = {"queue": UNCONSUMED_QUEUE}
    for name in PUSH_TASKS:
        routes[name] = {"queue": PUSH_QUEUE}
    return routes


PUSH_TASKS = ["bulletins.tasks.send_pushes_task", "bulletins.tasks.retry_pushes_task"]
SAFETY_NET_TASK = "bulletins.tasks.send_pushes_task"


class Routed:
    """This process queues with `push_routes()` inside the block (the worker always does)."""

    def __enter__(self):
        from portal.celery import app

        self.saved = app.conf.task_routes
        app.conf.task_routes = push_routes()
        app.amqp.flush_routes()

    def __exit__(self, *exc):
        from portal.celery import app

        app.conf.task_routes = self.saved
        app.amqp.flush_routes()


def run_worker():
    """`push.py --worker`: a Celery worker (solo pool) with `push_routes()`, on the default
    queue (recipient rows) and the push queue."""
    import agency

    agency._environment()
    import django

    django.setup()
    from django.conf import settings

    from portal.celery import app

    app.conf.task_routes = push_routes()
    app.worker_main(
        ["worker", "--pool", "solo", "-Q", f"{settings.CELERY_TASK_DEFAULT_QUEUE},{PUSH_QUEUE}",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING", "-n", f"{WORKER_NAME}%h"]
    )  # fmt: skip


def start_worker():
    import shift_change

    process = shift_change.start(
        [sys.executable, str(BENCH / "push.py"), "--worker"], "push-worker"
    )
    try:
        wait_ready(process)
    except BaseException:
        shift_change.stop(process)
        raise
    return process


def wait_ready(process, timeout=120):
    """Until the worker answers a ping: on a busy machine it takes more than a few seconds to
    start, and a task queued before would wait for it on the portal's clock."""
    from portal.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        replies = app.control.ping(timeout=0.5)
        if any(name.startswith(WORKER_NAME) for reply in replies for name in reply):
            return
    raise RuntimeError("the push worker did not start (see /tmp/bench-push-worker.log)")


def kill(process):
    """SIGKILL the worker's process group: no shutdown, no acknowledgement of its task."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- phases ----------------------------------------------------------------------------------


def publish(label):
    """An agency-wide "Officer safety - immediate" Order, published through the services, as its
    approver's Approve does. Returns (bulletin, the wall-clock time the publish call started)."""
    import agency
    import shift_change
    from django.utils import timezone

    from bulletins.services import authoring

    admin, root = agency.admin_user(), agency.agency_root()
    bulletin = shift_change.draft(admin, root, label, priority=1)
    with Routed():
        started = time.time()
        bulletin = authoring.publish_bulletin(
            bulletin, by=admin, now=timezone.now(), approved_by=agency.approver_user()
        )
        bulletin.returned = time.time() - started
    return bulletin, started


def wait_for(count, *, timeout=TIMEOUT_S, stall=120):
    """Until the service has seen `count` pushes; gives up after `timeout` s, or `stall` s
    without a new one."""
    deadline, seen, moved = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = stub("/_count")["posts"]
        if now >= count:
            return now
        if now != seen:
            seen, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            break
        time.sleep(0.05)
    return stub("/_count")["posts"]


def timings(started):
    """(seconds to the first 1,000 (or all, when fewer), to the last, number, per endpoint)."""
    posts = stub("/_posts")["posts"]
    times = sorted(at for _, at, *_ in posts)
    per_endpoint = {}
    for number, *_ in posts:
        per_endpoint[number] = per_endpoint.get(number, 0) + 1
    first = times[min(FIRST, len(times)) - 1] - started if times else float("inf")
    last = times[-1] - started if times else float("inf")
    well_formed = sum(bool(row[4]) for row in posts)
    return {
        "first": first, "last": last, "posts": len(posts), "endpoints": len(per_endpoint),
        "twice": sum(n > 1 for n in per_endpoint.values()), "well_formed": well_formed,
    }  # fmt: skip


def delivery_counts(bulletin):
    from django.db.models import Count, Q

    from bulletins.models import PushDelivery

    return PushDelivery.objects.filter(event__bulletin=bulletin).aggregate(
        rows=Count("pk"),
        sent=Count("pk", filter=Q(sent_at__isnull=False)),
        unknown=Count("pk", filter=Q(outcome="unknown")),
        unsettled=Count("pk", filter=Q(sent_at__isnull=True, outcome="")),
        other=Count("pk", filter=Q(sent_at__isnull=True) & ~Q(outcome__in=["", "unknown"])),
    )


def prepare():
    """Nothing else for the push worker to do: tasks left in its queues (seed_demo's recipient
    rows of its story bulletins, queued with nobody consuming them) are dropped, and outbox
    events still pending are marked fanned out. A bench shortcut, raw; the product never does
    it."""
    import redis
    from django.conf import settings
    from django.utils import timezone

    from bulletins.models import NotificationEvent

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
        settings.CELERY_TASK_DEFAULT_QUEUE, PUSH_QUEUE
    )
    NotificationEvent.objects.filter(fanned_out_at__isnull=True).update(
        fanned_out_at=timezone.now()
    )


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stages(bulletin, started):
    """Seconds from the publish call to: the recipient rows written, the outbox event fanned
    out (its delivery rows written), the first row claimed by a sender."""
    from django.db.models import Min

    from bulletins.models import Bulletin, NotificationEvent, PushDelivery

    written = Bulletin.objects.get(pk=bulletin.pk).recipients_written_at
    fanned = (
        NotificationEvent.objects.filter(bulletin=bulletin, event="published")
        .values_list("fanned_out_at", flat=True)
        .first()
    )
    claimed = PushDelivery.objects.filter(event__bulletin=bulletin).aggregate(at=Min("claimed_at"))[
        "at"
    ]
    return {
        name: (moment.timestamp() - started) if moment else None
        for name, moment in (("written", written), ("fanned", fanned), ("claimed", claimed))
    }


def phase_portal(expected, device):
    import shift_change

    prepare()
    stub("/_reset", "POST")
    worker = start_worker()
    try:
        cpu = cpu_seconds(worker.pid)
        bulletin, started = publish("push fan-out")
        seen = wait_for(expected)
        cpu = cpu_seconds(worker.pid) - cpu
        figures = timings(started)
    finally:
        shift_change.stop(worker)
    figures.update(stages(bulletin, started), cpu=cpu, returned=bulletin.returned)
    sample = [plain for _, plain in arrived_bodies(device, limit=200)]
    figures.update(delivery_counts(bulletin), seen=seen, expected=expected)
    figures["payload"] = sample[0] if sample else b""
    figures["payload_bytes"] = len(figures["payload"])
    figures["tags"] = sorted({json.loads(plain).get("tag") for plain in sample})
    figures["headers"] = stub("/_headers")
    return figures, bulletin


FLOOR_HEADERS = ("Content-Encoding", "Content-Type", "TTL", "Urgency", "Topic")


def phase_floor(data, headers, devices):
    """The same encryption and POST in a plain loop: http_ece's aes128gcm with a fresh key per
    message, one VAPID signature, one keep-alive requests session; the portal's plaintext (the
    same bytes) and headers. The devices are read from the database before the clock starts."""
    import http_ece
    import requests
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02

    def unpadded(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    stub("/_reset", "POST")
    session = requests.Session()
    cpu = time.process_time()
    started = time.time()
    vapid = Vapid02.from_string(os.environ["VAPID_PRIVATE_KEY"])
    claims = {"aud": STUB, "sub": os.environ["VAPID_SUBJECT"], "exp": int(time.time()) + 43200}
    sent = {name: headers[name] for name in FLOOR_HEADERS if name in headers}
    sent["Authorization"] = vapid.sign(claims)["Authorization"]
    for endpoint, p256dh, auth in devices:
        body = http_ece.encrypt(
            data, private_key=ec.generate_private_key(ec.SECP256R1()), dh=unpadded(p256dh),
            auth_secret=unpadded(auth), version="aes128gcm",
        )  # fmt: skip
        response = session.post(endpoint, data=body, headers=sent, timeout=(5, 15),
                                allow_redirects=False)  # fmt: skip
        response.close()
        if response.status_code != 201:
            raise RuntimeError(f"the floor's push got {response.status_code}")
    cpu = time.process_time() - cpu
    figures = timings(started)
    figures.update(payload_bytes=len(data), cpu=cpu)
    return figures


def phase_kill(expected, kill_after, device):
    """Kill -9 the worker mid-fan-out, start it again, queue the safety net as beat does until
    every delivery row of the event is settled; then count at the service."""
    import shift_change

    from bulletins.models import NotificationEvent, PushDelivery

    prepare()
    stub("/_reset", "POST")
    worker = start_worker()
    try:
        bulletin, started = publish("push fan-out, worker killed")
        at_kill = wait_for(kill_after)
        kill(worker)
    except BaseException:
        shift_change.stop(worker)
        raise
    after_kill = stub("/_count")["posts"]
    killed_at = time.time()
    worker = start_worker()
    from portal.celery import app

    events = list(NotificationEvent.objects.filter(bulletin=bulletin).values_list("pk", flat=True))
    deadline = time.monotonic() + 600
    try:
        with Routed():
            while time.monotonic() < deadline:
                counts = delivery_counts(bulletin)
                if counts["rows"] and not counts["unsettled"]:
                    break
                app.send_task(SAFETY_NET_TASK)  # beat's safety net
                time.sleep(5)
    finally:
        shift_change.stop(worker)
    figures = timings(started)
    reached = {number for number, *_ in stub("/_posts")["posts"]}
    unknown = PushDelivery.objects.filter(event__bulletin=bulletin, outcome="unknown")
    numbers = [
        int(e.rsplit("/", 1)[1]) for e in unknown.values_list("subscription__endpoint", flat=True)
    ]
    figures["unknown_reached"] = sum(number in reached for number in numbers)
    per_tag = {}
    for number, plain in arrived_bodies(device):
        key = (number, json.loads(plain).get("tag"))
        per_tag[key] = per_tag.get(key, 0) + 1
    counts = delivery_counts(bulletin)
    figures.update(counts, at_kill=at_kill, after_kill=after_kill, events=len(events),
                   settled_in=time.time() - killed_at, expected=expected,
                   twice_by_tag=sum(n > 1 for n in per_tag.values()))  # fmt: skip
    return figures


def clean_broker():
    """The killed worker's task stays 'unacknowledged' in Redis until its visibility timeout (an
    hour) and would then come back: drop it, and the queues this bench filled."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete("unacked", "unacked_index", PUSH_QUEUE, UNCONSUMED_QUEUE)


def run(count, kill_after=0, runs=RUNS):
    """Set up the devices, run the three phases; returns the figures for `report_rows` (or
    {"error": ...}: a failure here must not lose the rest of `make bench`)."""
    push_environment()
    try:
        return _run(count, kill_after, runs)
    except Exception as error:  # noqa: BLE001 - reported in the results table
        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {error}"}


def _run(count, kill_after, runs):
    import agency

    device = Device()
    stub_process = start_stub()
    try:
        agency.delete_bench_bulletins()
        # Before any device exists: this process's first publication pays for imports and
        # first connections (about 1 s of CPU), which a web process has long paid.
        publish("push warm-up")
        expected = make_subscriptions(count, device)
        print(f"  {expected:,} devices on the local push service", flush=True)
        portals, floors = [], []
        for _ in range(runs):  # interleaved, as the other phases of the bench
            portal, _ = phase_portal(expected, device)
            print(f"  portal: first {FIRST:,} in {portal['first']:.2f} s, last "
                  f"({portal['posts']:,}) in {portal['last']:.2f} s", flush=True)  # fmt: skip
            if not portal["payload"]:
                raise RuntimeError("no push reached the service: is push on (VAPID keys)?")
            floor = phase_floor(portal["payload"], portal["headers"], subscriptions())
            print(f"  floor: first {FIRST:,} in {floor['first']:.2f} s, last "
                  f"({floor['posts']:,}) in {floor['last']:.2f} s", flush=True)  # fmt: skip
            portals.append(portal)
            floors.append(floor)
            agency.delete_bench_bulletins()
        kill = phase_kill(expected, kill_after or mid_batch(expected), device)
        print(f"  kill test: killed after {kill['at_kill']:,} pushes; {kill['posts']:,} pushes, "
              f"{kill['twice_by_tag']} devices twice", flush=True)  # fmt: skip
    finally:
        import shift_change

        shift_change.stop(stub_process)
        agency.delete_bench_bulletins()
        delete_subscriptions()
        clean_broker()
    return {"portal": portals, "floor": floors, "kill": kill}


def mid_batch(expected):
    """About a third of the way, in the middle of a sender's batch."""
    from django.conf import settings

    size = settings.PUSH_BATCH_SIZE
    return min(expected - 1, expected // 3 // size * size + size // 2) or 1


# --- report ----------------------------------------------------------------------------------


def _verdict(ok):
    return "met" if ok else "**missed**"


def report_rows(fig):
    """The results table's rows for the push fan-out."""
    if "error" in fig:
        return [f"| push fan-out | failed: {fig['error']} | - | - | - | **missed** |"]
    import shift_change

    portals, floors, kill = fig["portal"], fig["floor"], fig["kill"]

    def med(runs, key, digits=2):
        return shift_change.med([run[key] for run in runs], digits, " s")

    def median(runs, key):
        return statistics.median(run[key] for run in runs)

    ratio = median(portals, "last") / median(floors, "last")
    expected = portals[0]["expected"]
    complete = all(
        run["posts"] == run["endpoints"] == run["expected"] == run["sent"] == run["well_formed"]
        for run in portals
    )
    first = min(FIRST, expected)
    never_twice = not kill["twice"] and not kill["twice_by_tag"]
    # Settled, and every device reached is a row sent or one the dead worker had claimed.
    settled = not kill["unsettled"] and kill["rows"] == kill["expected"]
    accounted = kill["endpoints"] == kill["sent"] + kill["unknown_reached"]
    lease = os.environ["PUSH_LEASE_SECONDS"]
    stage = {key: [run[key] for run in portals if run[key] is not None]
             for key in ("returned", "written", "fanned", "claimed")}  # fmt: skip
    return [
        f'| push an agency-wide "Officer safety - immediate" Order to {expected:,} devices '
        "(publish -> the last push accepted by a local push service answering 201; a real "
        f"Celery worker, solo pool) | last {med(portals, 'last')}, first {first:,} "
        f"{med(portals, 'first')}; each run every device once: "
        f"{'yes' if complete else '**no**'} ({portals[-1]['posts']:,} pushes to "
        f"{portals[-1]['endpoints']:,} devices, {portals[-1]['sent']:,} rows sent in the last), "
        f"payload {portals[-1]['payload_bytes']} bytes | the same http_ece encryption "
        "(aes128gcm, a fresh key each) and POST in a plain loop, one VAPID signature, one "
        f"keep-alive session: last {med(floors, 'last')}, first {first:,} "
        f"{med(floors, 'first')} | {ratio:.2f}x | <= {RATIO_TARGET}x, every device once | "
        f"{_verdict(ratio <= RATIO_TARGET and complete)} |",
        "| where the portal's time went (from the publish call, medians) | publish call "
        f"returned {_at(stage['returned'])}, recipient rows written {_at(stage['written'])}, "
        f"outbox event fanned out (email and delivery rows) {_at(stage['fanned'])}, first "
        f"batch claimed {_at(stage['claimed'])}; the worker process's CPU "
        f"{median(portals, 'cpu'):.2f} s (PostgreSQL's not counted) | the loop's CPU "
        f"{median(floors, 'cpu'):.2f} s | {median(portals, 'cpu') / median(floors, 'cpu'):.2f}x"
        " (CPU) | (for information) | |",
        f"| the same with the worker killed (SIGKILL) after {kill['at_kill']:,} pushes, started "
        f"again, the safety net queued every 5 s | {kill['posts']:,} pushes to "
        f"{kill['endpoints']:,} devices, {kill['twice_by_tag']} devices got the event twice; "
        f"rows: {kill['sent']:,} sent, {kill['unknown']:,} 'unknown' (claimed by the dead "
        f"worker; {kill['unknown_reached']:,} of them had reached the service), "
        f"{kill['other']:,} other, {kill['unsettled']:,} unsettled; settled "
        f"{kill['settled_in']:.0f} s after the kill (lease {lease} s) | - | - | no push sent "
        f"twice (every row settled) | {_verdict(never_twice and settled and accounted)} |",
    ]


def _at(values):
    return f"{statistics.median(values):.2f} s" if values else "-"


def main():
    args = arguments()
    if args.worker:
        run_worker()
        return
    os.environ.setdefault("DATABASE_URL", DATABASE_URL)
    import agency

    agency.setup(officers=args.subscriptions)
    figures = run(args.subscriptions, args.kill_after, args.runs)
    rows = ["| operation | the portal | its floor in the same run | ratio | target | |",
            "|---|---|---|---|---|---|", *report_rows(figures)]  # fmt: skip
    print()
    print(f"Push fan-out: {args.subscriptions:,} devices.")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

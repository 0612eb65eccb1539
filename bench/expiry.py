"""Twenty agency-wide fixed-term Orders due at once, ended by one sweep as the worker runs it.

    .venv/bin/python bench/expiry.py [--officers 36000] [--bulletins 20] [--phase 1.0]

Publishes the Orders through the service with one common `expires_at`, waits until it has
passed, then times one `clock.sweep(timezone.now())` - what `sweep_task` does every
SWEEP_INTERVAL_SECONDS. Lateness is measured against `expires_at`: as recorded (the audit event's
`at`, and `ended_at`) and as it happened (when each bulletin's transaction committed, taken by
wrapping `clock.end_on_time` from the outside). Then checks that every Order ended exactly once.
"""

import argparse
import statistics
import time
from datetime import timedelta

from agency import (
    BENCH_TITLE,
    StatementTimes,
    admin_user,
    agency_root,
    approver_user,
    delete_bench_bulletins,
    purge_task_queue,
    setup,
    summary,
    timed,
)


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officers", type=int, default=36000)
    parser.add_argument("--bulletins", type=int, default=20)
    parser.add_argument(
        "--phase",
        type=float,
        default=1.0,
        help="seconds between the common due time and the sweep (a beat tick lands anywhere "
        "from 0 to SWEEP_INTERVAL_SECONDS after it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench's bulletins")
    return parser.parse_args()


def publish_order(admin, root, label, *, expires_at):
    from django.utils import timezone

    from bulletins.services import authoring

    now = timezone.now()
    draft = authoring.save_draft(
        by=admin,
        targets=[(root, True)],
        now=now,
        title=f"{BENCH_TITLE} {label}",
        instruction="Work in pairs for the next 36 hours. Vary patrol patterns.",
        body="All patrols are paired for 36 hours from the start of the next tour.",
        kind="order",
        priority=1,
        to_sworn=True,
        to_auxiliary=True,
        to_civilian=True,
        supervisors_only=False,
        effective_at=None,
        expires_at=expires_at,
    )
    return authoring.publish_bulletin(
        draft, by=admin, now=timezone.now(), approved_by=approver_user()
    )


def publish_all(admin, root, count):
    """`count` Orders, all expiring at one moment just after the last is published."""
    from django.utils import timezone

    # A throw-away publish sizes the wait: due = now + count x (one publish) x 1.3 + 5 s.
    probe = timed(lambda: publish_order(admin, root, "probe", expires_at=None))
    delete_bench_bulletins()
    due_at = timezone.now() + timedelta(seconds=count * probe * 1.3 + 5)
    took, bulletins = [], []
    for number in range(count):
        start = time.perf_counter()
        bulletins.append(publish_order(admin, root, f"expiry {number}", expires_at=due_at))
        took.append(time.perf_counter() - start)
    return bulletins, due_at, took


def wait_until(moment):
    """Sleep until `moment`; returns how many seconds past it we already were (0 if not)."""
    from django.utils import timezone

    remaining = (moment - timezone.now()).total_seconds()
    if remaining > 0:
        time.sleep(remaining)
    return max(-remaining, 0.0)


def sweep_once():
    """One sweep as sweep_task runs it; returns its result, seconds, the time it started, and
    per ended bulletin: when its transaction committed and how long it took."""
    from django.db import connection
    from django.utils import timezone

    from bulletins.services import clock

    ended = {}
    transition = clock.end_on_time

    def observed(pk, *, now):
        start = time.perf_counter()
        done = transition(pk, now=now)  # @transaction.atomic: committed when it returns
        ended[pk] = (timezone.now(), time.perf_counter() - start)
        return done

    clock.end_on_time = observed
    statements = StatementTimes()
    try:
        with connection.execute_wrapper(statements):
            started_at = timezone.now()
            start = time.perf_counter()
            result = clock.sweep(started_at)
            seconds = time.perf_counter() - start
    finally:
        clock.end_on_time = transition
    return result, seconds, started_at, ended, statements


def recipient_updates():
    """(rows updated, of which heap-only) on bulletins_recipient, from pg_stat_user_tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'bulletins_recipient'"
        )
        return cursor.fetchone()


def index_count(table):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [table])
        return cursor.fetchone()[0]


def verify(ids, told):
    """Every Order EXPIRED exactly once, its open obligations closed, one outbox row each."""
    from django.db.models import Count

    from bulletins.models import Bulletin, NotificationEvent, Recipient
    from portal.models import AuditEvent

    expired = Bulletin.objects.filter(pk__in=ids, status=Bulletin.Status.EXPIRED).count()
    audits = (
        AuditEvent.objects.filter(
            action="bulletin.expire",
            object_type="bulletins.bulletin",
            object_id__in=[str(pk) for pk in ids],
        )
        .values("object_id")
        .annotate(n=Count("id"))
    )
    audit_counts = sorted(row["n"] for row in audits)
    # Obligations close with their bulletin (nothing is written): every unacknowledged
    # recipient of an expired bulletin reads "ended before acknowledged".
    closed = Recipient.objects.filter(
        bulletin_id__in=ids, bulletin__status=Bulletin.Status.EXPIRED, acknowledged_at=None
    ).count()
    outbox = (
        NotificationEvent.objects.filter(bulletin_id__in=ids, event=NotificationEvent.Event.ENDED)
        .values("bulletin_id")
        .annotate(n=Count("id"))
    )
    outbox_counts = sorted(row["n"] for row in outbox)
    return {
        "status EXPIRED": (expired, len(ids)),
        "bulletins with a bulletin.expire audit event": (len(audit_counts), len(ids)),
        "bulletin.expire audit events in all": (sum(audit_counts), len(ids)),
        "recipients ended before acknowledged": (closed, told),
        "bulletins with an 'ended' outbox row": (len(outbox_counts), len(ids)),
        "'ended' outbox rows in all": (sum(outbox_counts), len(ids)),
    }


def print_checks(title, checks):
    print(title)
    for label, (seen, expected) in checks.items():
        mark = "ok" if seen == expected else "MISMATCH"
        print(f"  {mark:>8}  {label}: {seen:,} (expected {expected:,})")
    return all(seen == expected for seen, expected in checks.values())


def lateness(bulletins, due_at, ended, sweep_started_at):
    from bulletins.models import Bulletin
    from portal.models import AuditEvent

    ids = [b.pk for b in bulletins]
    recorded = dict(
        AuditEvent.objects.filter(
            action="bulletin.expire",
            object_type="bulletins.bulletin",
            object_id__in=[str(pk) for pk in ids],
        ).values_list("object_id", "at")
    )
    ended_at = dict(Bulletin.objects.filter(pk__in=ids).values_list("pk", "ended_at"))
    return {
        "committed (transaction done) - expires_at": [
            (ended[pk][0] - due_at).total_seconds() for pk in ids
        ],
        "  of which sweep start - expires_at": [(sweep_started_at - due_at).total_seconds()],
        "  of which commit - sweep start": [
            (ended[pk][0] - sweep_started_at).total_seconds() for pk in ids
        ],
        "recorded: audit event `at` - expires_at": [
            (recorded[str(pk)] - due_at).total_seconds() for pk in ids
        ],
        "recorded: ended_at - expires_at": [(ended_at[pk] - due_at).total_seconds() for pk in ids],
    }


def main():
    args = arguments()
    setup(officers=args.officers)
    from django.conf import settings

    # These scripts time the recipient statement inside publish_bulletin: keep it inline
    # (the product defers it to a task for large audiences; shift_change.py measures that).
    settings.FAN_OUT_INLINE_LIMIT = 10**9
    from django.conf import settings
    from django.utils import timezone

    from bulletins.models import Recipient
    from bulletins.services import clock

    admin, root = admin_user(), agency_root()
    delete_bench_bulletins()
    backlog = clock.sweep(timezone.now())  # whatever was already due, so it is not timed below
    print(f"\nbacklog swept first (not timed): {backlog}")

    bulletins, due_at, took = publish_all(admin, root, args.bulletins)
    ids = [b.pk for b in bulletins]
    told = Recipient.objects.filter(bulletin_id__in=ids).count()
    print(
        f"published {len(ids)} agency-wide Orders, {told:,} recipients "
        f"({told // len(ids):,} each); publish {summary(took)}"
    )
    late_start = wait_until(due_at)
    if late_start > 0:
        print(f"WARNING: publishing ran {late_start:.1f} s past the due time")
    wait_until(due_at + timedelta(seconds=args.phase))

    before = recipient_updates()
    result, seconds, started_at, ended, statements = sweep_once()
    time.sleep(1.5)  # PostgreSQL publishes table statistics at most once a second
    updated, hot = (
        after - earlier for after, earlier in zip(recipient_updates(), before, strict=True)
    )
    per_call = [took for _, took in ended.values()]
    print(f"\nsweep result: {result}")
    print(f"sweep total: {seconds:.2f} s for {len(ended)} endings")
    per_bulletin = seconds / max(len(ended), 1)
    print(f"per bulletin: {per_bulletin:.3f} s (total / count); each call {summary(per_call)}")
    print("  where the sweep spends its time (SQL statement kinds, top 6):")
    for label, spent in sorted(statements.seconds.items(), key=lambda item: -item[1])[:6]:
        print(f"    {spent:8.3f} s  {label} (x{statements.count[label]})")
    print(f"    {seconds - statements.total:8.3f} s  Python and COMMITs")
    print(
        f"  recipient rows updated: {updated:,}, of which HOT (no index entries written): "
        f"{hot:,}; bulletins_recipient has {index_count('bulletins_recipient')} indexes"
    )

    print("\nlateness (seconds after expires_at):")
    for label, values in lateness(bulletins, due_at, ended, started_at).items():
        print(f"  {label}: median {statistics.median(values):.3f}, max {max(values):.3f}")
    interval = settings.SWEEP_INTERVAL_SECONDS
    print(
        f"  worst case with SWEEP_INTERVAL_SECONDS={interval}: interval + sweep time = "
        f"{interval + seconds:.1f} s (here the sweep fired {args.phase:.1f} s after the due time)"
    )

    print()
    ok = print_checks("after the sweep:", verify(ids, told))
    again = clock.sweep(timezone.now())
    print(f"second sweep (must change nothing): {again}")
    ok = print_checks("after a second sweep:", verify(ids, told)) and ok
    print("all checks passed" if ok else "CHECKS FAILED")

    purge_task_queue()
    if not args.keep:
        delete_bench_bulletins()


if __name__ == "__main__":
    main()

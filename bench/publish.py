"""Publishing one agency-wide Order to every member, against the floor of a bare INSERT ... SELECT.

    .venv/bin/python bench/publish.py [--officers 36000] [--runs 7]

Each figure is one transaction from its first statement to its COMMIT returning (the recipient
foreign keys are DEFERRABLE INITIALLY DEFERRED, so their checks run at COMMIT). Runs are
interleaved, the bench's rows are deleted and the table vacuumed between runs.
"""

import argparse
import statistics
import time

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
    timed_cpu,
)

FLOOR_SQL = (
    "INSERT INTO bulletins_recipient (bulletin_id, user_id, unit_id, added_at) "
    "SELECT %s, id, unit_id, %s FROM portal_user "
    "WHERE agency_id = %s AND is_active AND unit_id IS NOT NULL"
)


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officers", type=int, default=36000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per variant (>= 5)")
    return parser.parse_args()


def draft(admin, root, label):
    from django.utils import timezone

    from bulletins.services import authoring

    return authoring.save_draft(
        by=admin,
        targets=[(root, True)],
        now=timezone.now(),
        title=f"{BENCH_TITLE} {label}",
        instruction="Work in pairs on every post and every tour. No solo posts.",
        body="Following the attack on police officers, **there will be no solo posts**.",
        kind="order",
        priority=1,
        to_sworn=True,
        to_auxiliary=True,
        to_civilian=True,
        supervisors_only=False,
        effective_at=None,
        expires_at=None,
    )


def publish(bulletin, admin, *, wrapped=True):
    """The service through the COMMIT and the on-commit task queueing.

    `wrapped`: inside an outer transaction.atomic() (publish_bulletin's own atomic becomes a
    savepoint); otherwise publish_bulletin's atomic is the transaction, as a view without
    ATOMIC_REQUESTS calls it."""
    from django.db import transaction
    from django.utils import timezone

    from bulletins.services import authoring

    if not wrapped:
        authoring.publish_bulletin(
            bulletin, by=admin, now=timezone.now(), approved_by=approver_user()
        )
        return
    with transaction.atomic():
        authoring.publish_bulletin(
            bulletin, by=admin, now=timezone.now(), approved_by=approver_user()
        )


def service_insert_only(bulletin, *, unordered=False):
    """Just the service's recipient statement (add_recipients), in its own transaction.

    `unordered`: the same audience queryset with its default ordering cleared - User's
    Meta.ordering = ["name"] otherwise puts an ORDER BY name into the INSERT ... SELECT."""
    from django.db import transaction
    from django.utils import timezone

    from bulletins.services import authoring

    members = bulletin.members()
    with transaction.atomic():
        authoring.add_recipients(
            bulletin, members.order_by() if unordered else members, now=timezone.now()
        )


def floor(bulletin, root, *, on_conflict=False):
    from django.db import connection, transaction
    from django.utils import timezone

    sql = FLOOR_SQL + (" ON CONFLICT (bulletin_id, user_id) DO NOTHING" if on_conflict else "")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [bulletin.pk, timezone.now(), root.pk])


def recipients_of(bulletin):
    from bulletins.models import Recipient

    return Recipient.objects.filter(bulletin=bulletin).count()


def check_floor_selects_the_audience(admin, root):
    """The floor's plain WHERE must pick exactly the people the audience rule picks."""
    from django.db import connection

    bulletin = draft(admin, root, "audience check")
    audience_sql, params = (
        bulletin.members().values("id").query.get_compiler(connection=connection).as_sql()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (({audience_sql}) EXCEPT (SELECT id FROM portal_user "  # noqa: S608
            "WHERE agency_id = %s AND is_active AND unit_id IS NOT NULL)) a",
            [*params, root.pk],
        )
        missing = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM ((SELECT id FROM portal_user WHERE agency_id = %s "  # noqa: S608
            f"AND is_active AND unit_id IS NOT NULL) EXCEPT ({audience_sql})) a",
            [root.pk, *params],
        )
        extra = cursor.fetchone()[0]
    expected = bulletin.members().count()
    delete_bench_bulletins()
    if missing or extra:
        raise SystemExit(f"floor query differs from the audience: {missing} missing, {extra} extra")
    return expected


VARIANTS = {
    "publish": lambda b, admin, root: publish(b, admin),
    "publish, no outer atomic": lambda b, admin, root: publish(b, admin, wrapped=False),
    "add_recipients only": lambda b, admin, root: service_insert_only(b),
    "add_recipients unsorted": lambda b, admin, root: service_insert_only(b, unordered=True),
    "floor + ON CONFLICT": lambda b, admin, root: floor(b, root, on_conflict=True),
    "floor": lambda b, admin, root: floor(b, root),
}


def measure(admin, root, expected, runs):
    """Interleaved runs of every variant (the first round is a warm-up, not counted)."""
    wall = {name: [] for name in VARIANTS}
    cpu = {name: [] for name in VARIANTS}
    for round_number in range(runs + 1):
        for name, run in VARIANTS.items():
            bulletin = draft(admin, root, f"{name} {round_number}")
            took, used = timed_cpu(lambda run=run, bulletin=bulletin: run(bulletin, admin, root))
            told = recipients_of(bulletin)
            if told != expected:
                raise SystemExit(f"{name}: {told} recipient rows, expected {expected}")
            if round_number:
                wall[name].append(took)
                cpu[name].append(used)
            delete_bench_bulletins()
        print(f"  pass {round_number or 'warm-up'} done", flush=True)
    return wall, cpu


def print_table(title, seconds, rows):
    """One line per variant: spread, ratio of medians to the floor, paired and best ratios."""
    floor_values = seconds["floor"]
    base = statistics.median(floor_values)
    print(f"\n{title}")
    for name, values in seconds.items():
        median = statistics.median(values)
        paired = statistics.median(v / f for v, f in zip(values, floor_values, strict=True))
        print(
            f"  {name:>24}: {summary(values)} = {median / base:.2f}x floor "
            f"(per-pass {paired:.2f}x, best-of {min(values) / min(floor_values):.2f}x), "
            f"{rows / median:,.0f} rows/s"
        )
    return statistics.median(seconds["publish"]) / base


def profile_publish(admin, root, runs, *, wrapped):
    """Where one publish spends its time: per SQL statement kind, the COMMIT, the on-commit
    task queueing (Redis) and Python. Separate runs: the wrappers add a little overhead."""
    from django.db import connection

    rows = []
    for run in range(runs):
        bulletin = draft(admin, root, f"profile {run}")
        times, commit, hooks = StatementTimes(), _Stopwatch(), _Stopwatch()
        connection._commit = commit.wrap(connection._commit)
        connection.run_and_clear_commit_hooks = hooks.wrap(connection.run_and_clear_commit_hooks)
        try:
            with connection.execute_wrapper(times):
                total = timed(lambda bulletin=bulletin: publish(bulletin, admin, wrapped=wrapped))
        finally:
            del connection._commit, connection.run_and_clear_commit_hooks
        rows.append(
            {
                **{f"SQL {label} (x{times.count[label]})": s for label, s in times.seconds.items()},
                "Python (service body)": total - times.total - commit.seconds - hooks.seconds,
                "COMMIT (incl. deferred FK checks)": commit.seconds,
                "on-commit: deliver_event_task.delay to Redis": hooks.seconds,
                "total": total,
            }
        )
        delete_bench_bulletins()
    return {key: statistics.median(row.get(key, 0.0) for row in rows) for key in rows[0]}


class _Stopwatch:
    """Adds up the time spent in the functions it wraps."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, function):
        def timed_call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed_call


def floor_commit_share(admin, root, runs):
    """The floor's INSERT statement vs its COMMIT (deferred foreign-key checks)."""
    from django.db import connection, transaction
    from django.utils import timezone

    inserts, commits = [], []
    for run in range(runs):
        bulletin = draft(admin, root, f"floor profile {run}")
        with transaction.atomic(), connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(FLOOR_SQL, [bulletin.pk, timezone.now(), root.pk])
            inserted = time.perf_counter()
        committed = time.perf_counter()
        inserts.append(inserted - start)
        commits.append(committed - inserted)
        delete_bench_bulletins()
    return statistics.median(inserts), statistics.median(commits)


def explain(sql, params):
    """EXPLAIN ANALYZE of one statement, rolled back."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
        transaction.set_rollback(True)
        return [row[0] for row in cursor.fetchall()]


def explain_inserts(admin, root):
    """The plans of the service's recipient INSERT and of the floor's."""
    from django.db import connection, transaction
    from django.utils import timezone

    from bulletins.models import Recipient
    from bulletins.services import authoring

    bulletin = draft(admin, root, "explain")
    captured = []

    def capture(execute, sql, params, many, context):
        if sql.startswith(f"INSERT INTO {Recipient._meta.db_table}"):
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(capture):
        authoring.add_recipients(bulletin, bulletin.members(), now=timezone.now())
        transaction.set_rollback(True)
    plans = {
        "service (add_recipients)": explain(*captured[0]),
        "floor": explain(FLOOR_SQL, [bulletin.pk, timezone.now(), root.pk]),
    }
    delete_bench_bulletins()
    return plans


def main():
    args = arguments()
    runs = max(args.runs, 5)
    setup(officers=args.officers)
    from django.conf import settings

    # These scripts time the recipient statement inside publish_bulletin: keep it inline
    # (the product defers it to a task for large audiences; shift_change.py measures that).
    settings.FAN_OUT_INLINE_LIMIT = 10**9
    from django.db import connection

    admin, root = admin_user(), agency_root()
    delete_bench_bulletins()  # leftovers of an interrupted run
    expected = check_floor_selects_the_audience(admin, root)
    print(
        f"\npublish: one agency-wide Order to {expected:,} people "
        f"(PostgreSQL {connection.pg_version // 10000}), {runs} runs per variant + warm-up"
    )

    wall, cpu = measure(admin, root, expected, runs)
    ratio = print_table("wall clock, first statement to COMMIT returned:", wall, expected)
    verdict = "within" if ratio <= 1.25 else "OVER"
    print(f"  => publish / floor = {ratio:.2f}x, medians ({verdict} the 1.25x budget)")
    if None not in cpu["floor"]:
        ratio = print_table("CPU time, this process + its PostgreSQL backend:", cpu, expected)
        print(f"  => publish / floor = {ratio:.2f}x on CPU time")

    for wrapped in (False, True):
        how = "inside an outer atomic()" if wrapped else "publish_bulletin's own transaction"
        print(f"\nwhere publish spends its time, {how} (medians of {runs} profiled runs):")
        for key, value in profile_publish(admin, root, runs, wrapped=wrapped).items():
            print(f"  {value * 1000:9.1f} ms  {key}")
    insert, commit = floor_commit_share(admin, root, runs)
    print(f"floor: INSERT {insert * 1000:.1f} ms + COMMIT {commit * 1000:.1f} ms (medians)")

    for name, lines in explain_inserts(admin, root).items():
        print(f"\nEXPLAIN ANALYZE, {name}:")
        for line in lines:
            print(f"  {line}")

    purge_task_queue()


if __name__ == "__main__":
    main()

"""Shared setup for the benchmark scripts: a PostgreSQL bench database holding the demo agency
with at least N generated members, production-like settings, and timing helpers.

Import it before anything from Django: `from agency import setup; setup(officers=36000)`.
"""

import collections
import os
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BENCH_TITLE = "[bench]"
GENERATED_EMAILS = r"^officer[0-9]{5}@demo\.test$"


def _environment():
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-throwaway-secret-key")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    # Plain http on loopback: the cookies keep their plain names (sessionid, csrftoken), which
    # the wrk script sends; in production they are Secure and named __Host-...
    os.environ.setdefault("DJANGO_SECURE_COOKIES", "false")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # Never a real SMTP server from the bench, whatever .env says.
    os.environ["EMAIL_URL"] = "memorymail://"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _ensure_database(url):
    """CREATE DATABASE if it is missing, connecting to the `postgres` maintenance database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def generated_members():
    from portal.models import User

    return User.objects.filter(email__regex=GENERATED_EMAILS, is_active=True).count()


def setup(*, officers):
    """django.setup(), migrate, and seed the demo agency up to `officers` generated members."""
    _environment()
    _ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    have = generated_members()
    if have < officers or not _agency_exists():
        print(f"seeding the demo agency: {have} -> {officers} generated members ...", flush=True)
        seconds = timed(lambda: call_command("seed_demo", officers=officers))
        print(f"seeded in {seconds:.1f} s", flush=True)
    _vacuum("portal_user", "portal_unit", "bulletins_recipient")


def _vacuum(*tables):
    """seed_demo rewrites every generated member once (the shared password hash), leaving one
    dead row per member until autovacuum passes: vacuum now, or the first runs scan twice the
    heap and the figures depend on when autovacuum happened to run."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def _agency_exists():
    from bulletins.management.commands.seed_demo import AGENCY
    from portal.models import Unit

    return Unit.objects.get_root_nodes().filter(name=AGENCY).exists()


def admin_user():
    from portal.models import User

    return User.objects.get(email="admin@demo.test")


def approver_user():
    """Approves the bench's agency-wide orders, as the approval rule asks (issue 21)."""
    from portal.models import User

    return User.objects.get(email="chief@demo.test")


def agency_root():
    from bulletins.management.commands.seed_demo import AGENCY
    from portal.models import Unit

    return Unit.objects.get_root_nodes().get(name=AGENCY)


def timed(fn):
    """Wall-clock seconds `fn()` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def backend_cpu_seconds():
    """CPU seconds used so far by this connection's PostgreSQL backend (same host only), or
    None. With other work on the machine, CPU time moves far less than wall-clock time."""
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_cpu(fn):
    """(wall seconds, CPU seconds of this process and its PostgreSQL backend) for `fn()`;
    the CPU figure is None when the server is not on this machine."""
    backend, own = backend_cpu_seconds(), time.process_time()
    wall = timed(fn)
    own = time.process_time() - own
    after = backend_cpu_seconds()
    return wall, (None if backend is None or after is None else own + after - backend)


def summary(values, unit="s", digits=3):
    """'median X (min Y - max Z)'."""
    median = statistics.median(values)
    return (
        f"median {median:.{digits}f} {unit} "
        f"(min {min(values):.{digits}f} - max {max(values):.{digits}f})"
    )


def bench_bulletins():
    from bulletins.models import Bulletin

    return Bulletin.objects.filter(title__startswith=BENCH_TITLE)


def delete_bench_bulletins():
    """Remove the bulletins the bench made and every row hanging off them (recipients, versions,
    outbox, ...), with raw SQL: the product never deletes these, the bench database may.
    Audit events are kept (they name the bulletin by id, with no foreign key).
    Returns the number of rows deleted."""
    from django.db import connection, transaction

    from bulletins.models import Bulletin

    ids = list(bench_bulletins().values_list("pk", flat=True))
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        deleted = _delete_with_dependents(cursor, Bulletin, "id", ids)
    # Autovacuum may be off (it is on the development machine): the 36,000-row tables the bench
    # deletes from are vacuumed here, or their dead rows pile up run after run.
    _vacuum(
        "bulletins_recipient", "bulletins_receipt", "bulletins_notification",
        "bulletins_quizattempt", "bulletins_response",
    )  # fmt: skip
    return deleted


def _delete_with_dependents(cursor, model, column, ids):
    """DELETE rows of `model` whose `column` is in `ids`, children first (reverse foreign keys)."""
    return _delete_where(cursor, model, f"{column} = ANY(%s)", [ids])


def _delete_where(cursor, model, condition, params):
    from portal.models import AuditEvent

    if model is AuditEvent:
        raise RuntimeError("the bench never deletes audit events")
    table = model._meta.db_table
    own = f"SELECT id FROM {table} WHERE {condition}"  # noqa: S608
    deleted = 0
    for relation in model._meta.get_fields(include_hidden=True):
        if relation.auto_created and (relation.one_to_many or relation.one_to_one):
            child_condition = f"{relation.field.column} IN ({own})"
            deleted += _delete_where(cursor, relation.related_model, child_condition, params)
    cursor.execute(f"DELETE FROM {table} WHERE {condition}", params)  # noqa: S608
    return deleted + cursor.rowcount


def purge_task_queue():
    """Drop the delivery tasks the bench queued: nobody consumes them here."""
    from portal.celery import app

    try:
        return app.control.purge()
    except Exception as error:  # noqa: BLE001 - a missing broker must not hide the figures
        print(f"(could not purge the Celery queue: {error})")
        return None


_TABLE = re.compile(r'(?:INSERT INTO|UPDATE|DELETE FROM|FROM)\s+"?(\w+)"?', re.IGNORECASE)


def statement_label(sql):
    """'SELECT bulletins_bulletin', 'INSERT bulletins_recipient', ..."""
    verb = sql.lstrip().split(None, 1)[0].upper()
    table = _TABLE.search(sql)
    return f"{verb} {table.group(1) if table else ''}".strip()


class StatementTimes:
    """Seconds spent per kind of SQL statement while installed as a connection execute wrapper:

    with connection.execute_wrapper(times := StatementTimes()): ...
    """

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.count = collections.Counter()

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            label = statement_label(sql)
            self.seconds[label] += time.perf_counter() - start
            self.count[label] += 1

    @property
    def total(self):
        return sum(self.seconds.values())

"""What differs between PostgreSQL (production and the test suite) and SQLite (the embedded
default of `make run`), in one place. Everything else in the portal is written once, for both.

Decided here, by the functions below:
- Search: full-text search on PostgreSQL (weighted, websearch syntax); a case-insensitive
  substring match on SQLite (`search`).
- Advisory locks: PostgreSQL's order the audit sealers; SQLite begins every writing transaction
  IMMEDIATE (settings), which serialises writers anyway (`advisory_xact_lock`).
- Placing a timestamp among limits: PostgreSQL's `width_bucket`; a CASE on SQLite
  (`has_width_bucket`, for the coverage figures).
- A database's identity for cache keys: its name and oid on PostgreSQL; its file on SQLite
  (`identity`).
- Server-side binding and prepared statements: PostgreSQL only (`prepared_cursor`).

Decided elsewhere, said here:
- The acknowledgement in one statement (a data-modifying WITH, `bulletins.services.reading`)
  runs on PostgreSQL only (`is_postgresql`); SQLite always takes the checked way, which records
  the same rows in a few statements.
- Row locks: SQLite has none, and Django leaves out SELECT ... FOR UPDATE there; its IMMEDIATE
  transactions serialise writers instead. Outbox rows are claimed with SKIP LOCKED
  (`bulletins.notifications`; pushes in `bulletins.services.push`) so that two workers never
  take the same row; the embedded default runs one worker.
- Audit events are append-only: on PostgreSQL a trigger refuses DELETE and every UPDATE but
  sealing an unsealed event (portal migrations 0002 and 0004); on SQLite nothing enforces it,
  the application simply never changes or deletes an event.
- Autovacuum settings of the recipient table (bulletins migration 0007): PostgreSQL only.
  Migrations test the vendor themselves: a migration must not depend on code that changes.
- Parameters: SQLite refuses a statement with more than 32,766 of them, so large batches are cut
  to stay under it (`portal.roster`, the audit seal's chunks).
- Connections: SQLite runs in WAL mode with IMMEDIATE transactions; PostgreSQL connections are
  kept and health-checked (`portal.settings`).

Written once for both, in a form both accept: INSERT ... SELECT ... ON CONFLICT
(`insert_from`), and UPDATE ... FROM a VALUES list (the roster import, the audit seal), which
needs SQLite 3.33 or later. Python's sqlite3 gives no row count (-1) for a statement that starts
with WITH, so a statement whose count matters does not.
"""

import functools
import operator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Q


def is_postgresql():
    return connection.vendor == "postgresql"


@functools.cache
def _identity(name):
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
            return f"{name}:{cursor.fetchone()[0]}"
    return str(name)


def identity():
    """A name for the database that no other database shares (PostgreSQL: its name and oid),
    so that two databases sharing one Redis never read each other's cache entries."""
    return _identity(settings.DATABASES["default"]["NAME"])


def prepared_cursor():
    """A cursor that binds its parameters on the server (Django binds them in the client), in
    Django's wrapper (logged and counted like any other). psycopg prepares such a statement once
    it has run `prepare_threshold` times on a connection (settings: 5, unless
    DATABASE_PREPARED_STATEMENTS is off), and connections are kept (CONN_MAX_AGE): a hot
    statement whose planning costs about as much as its execution is then planned once per
    connection instead of once per request. PostgreSQL only."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    real = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not six
    real.close_if_health_check_failed()
    real.ensure_connection()
    real.validate_thread_sharing()
    cursor = ServerBindingCursor(real.connection)
    if real.queries_logged:
        return real.make_debug_cursor(cursor)
    return real.make_cursor(cursor)


def search(queryset, text, fields):
    """`queryset` narrowed to the rows that match `text`. `fields` are the columns searched,
    by full-text weight: {"A": ["title"], "B": ["body"]}. PostgreSQL: full-text search in
    websearch syntax ("quoted phrase", -word); SQLite: any field contains `text`, ignoring case.
    """
    if is_postgresql():
        from django.contrib.postgres.search import SearchQuery, SearchVector

        vectors = [SearchVector(*names, weight=weight) for weight, names in fields.items()]
        matched = SearchQuery(text, search_type="websearch")
        return queryset.annotate(search=functools.reduce(operator.add, vectors)).filter(
            search=matched
        )
    names = [name for names in fields.values() for name in names]
    return queryset.filter(
        functools.reduce(operator.or_, (Q(**{f"{name}__icontains": text}) for name in names))
    )


def advisory_xact_lock(key):
    """Wait until no other transaction holds the lock `key` (an integer), then hold it until
    this transaction ends. PostgreSQL only: SQLite serialises writing transactions anyway."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def has_width_bucket(vendor=None):
    """Whether the database places a value among ascending limits in one call, PostgreSQL's
    `width_bucket(value, limits[])`; elsewhere a CASE does. `vendor` asks about another
    database than the one in use (a test compares both forms on PostgreSQL)."""
    return (vendor or connection.vendor) == "postgresql"


def insert_from(model, columns, rows, *, on_conflict=""):
    """Write every row of the queryset `rows` (a `values_list` in the order of `columns`) into
    `model`'s table in one INSERT ... SELECT: no row passes through Python. `on_conflict` is a
    conflict target, e.g. "(bulletin_id, user_id)", whose duplicates are skipped (DO NOTHING).
    Returns how many rows were written."""
    select_sql, params = rows.query.get_compiler(connection=connection).as_sql()
    skip = f" ON CONFLICT {on_conflict} DO NOTHING" if on_conflict else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
            # "WHERE true" lets SQLite tell the upsert clause from a join constraint.
            f"SELECT * FROM ({select_sql}) AS r WHERE true{skip}",
            params,
        )
        return cursor.rowcount

"""A per-person cache of the feed page: an unchanged feed is served without the ORM or the
template.

A cached page carries the stamp it was built from and is served only while the stamp still
holds and the clock has not moved past what it shows:

- an agency-wide counter, bumped by every transition that can change anyone's feed (publish,
  amend, lift, take effect, end, review flags, re-affirm) - `bulletins_changed()`;
- the person's own counter, bumped when they open or acknowledge - `reader_changed(user)`;
- the fields of the person that decide their audience and header (unit, role, member class);
- `until`: the next time the clock changes the page - any live bulletin taking effect or
  ending - and at most MAX_AGE_SECONDS. Ages ("in force 5 minutes") are kept as marks and
  filled in each time the page is served (`fill_ages`).

Counters are bumped inside the transaction (so the same request sees the change) and again
after commit (so a page built from the old rows meanwhile is not kept); a change made outside a
transaction (one statement, committed at once) is bumped once, after it. A counter that Redis
loses restarts at a random value: it never matches an old page. Keys carry the database's
identity, so two databases sharing one Redis never see each other's pages.
"""

import functools
import re
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils.timesince import timesince

from bulletins.models import Bulletin

MAX_AGE_SECONDS = 900
CSRF_SENTINEL = "\x00csrf-token\x00"
AGE_MARK = re.compile("\x00age:([0-9.]+)\x00")


@functools.cache
def _database_identity(name):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
            return f"{name}:{cursor.fetchone()[0]}"
    return str(name)


def cache_key(*parts):
    identity = _database_identity(settings.DATABASES["default"]["NAME"])
    return ":".join(["feed", identity, *map(str, parts)])


def start_counter(key):
    cache.add(key, secrets.randbits(62), timeout=None)
    return cache.get(key)


def _bump(keys):
    """Add one to each counter of `keys` (in one round trip where the cache can), starting
    those that do not exist."""
    if hasattr(cache, "incr_many"):
        missing = [key for key, value in cache.incr_many(keys).items() if value is None]
    else:  # the embedded default's file cache
        missing = []
        for key in keys:
            try:
                cache.incr(key)
            except ValueError:
                missing.append(key)
    for key in missing:
        start_counter(key)


def bump_counter(*keys):
    """Bumps the counters `keys` now (the same request sees the change) and after commit (a
    page built from the old rows meanwhile is not kept); outside a transaction, once."""
    _bump(keys)
    if connection.in_atomic_block:  # outside one, the change has committed already
        transaction.on_commit(lambda: _bump(keys))


def bulletins_changed():
    """Any feed may have changed. Call inside the transaction of the change."""
    bump_counter(cache_key("changed"))


def reader_key(user):
    return cache_key("reader", user.pk)


def reader_changed(user):
    """This person's feed changed (they opened or acknowledged something)."""
    bump_counter(reader_key(user))


def read_stamp(counters, extras, *keys):
    """(stamp, {key: value} of those of `keys` that exist), in one round trip to Redis. The
    stamp is the counters' values (each started if missing), then `extras`."""
    found = cache.get_many([*counters, *keys])
    stamp = (*(found.get(counter) or start_counter(counter) for counter in counters), *extras)
    return stamp, found


def kept(counters, extras, key, now):
    """(stamp, the entry kept under `key` if it was kept under this stamp and has not run out,
    else None), in one round trip to Redis."""
    stamp, found = read_stamp(counters, extras, key)
    entry = found.get(key)
    if entry and entry["stamp"] == stamp and now.timestamp() < entry["until"]:
        return stamp, entry
    return stamp, None


def keep(key, stamp, *, now, until, **parts):
    """Keep `parts` under `key` and `stamp` until `until` (at most MAX_AGE_SECONDS)."""
    timeout = max(1, min(MAX_AGE_SECONDS, int((until - now).total_seconds())))
    entry = {"stamp": stamp, "until": until.timestamp(), **parts}
    cache.set(key, entry, timeout)
    return entry


def lookup(user, now, *, part="page"):
    """(stamp, the cached entry if it is still good, else None), in one round trip to Redis.
    `part`: the feed page, or another thing kept per person under the same stamp."""
    counters = [cache_key("changed"), reader_key(user)]
    person = (user.unit_id, user.role, user.member_class, user.is_active, user.is_superuser,
              user.name)  # fmt: skip
    return kept(counters, person, cache_key(part, user.pk), now)


def store(user, stamp, *, now, until, part="page", **parts):
    """Keep `parts` (html, etag, ...) for `user` under `stamp` until `until` at the latest."""
    keep(cache_key(part, user.pk), stamp, now=now, until=until, **parts)


def until_next(now, moments):
    """How long something kept may live: until the first of `moments` (when the clock changes
    it), and never more than MAX_AGE_SECONDS."""
    return min([now + timedelta(seconds=MAX_AGE_SECONDS), *moments])


def valid_until(now):
    """The next time the clock changes which bulletins are in force (or MAX_AGE_SECONDS)."""
    upcoming = Bulletin.objects.filter(status__in=Bulletin.LIVE_STATUSES).aggregate(
        start=Min("effective_at", filter=Q(effective_at__gt=now)),
        end=Min("expires_at", filter=Q(expires_at__gt=now)),
    )
    return until_next(now, filter(None, upcoming.values()))


def age_mark(since):
    return f"\x00age:{since.timestamp()}\x00"


def fill_ages(html, now):
    """The page as of `now`: each age mark becomes "5 minutes", "2 days", ..."""
    return AGE_MARK.sub(
        lambda mark: timesince(datetime.fromtimestamp(float(mark[1]), UTC), now, depth=1), html
    )

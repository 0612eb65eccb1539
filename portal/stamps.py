"""Entries kept in the cache under a stamp: served while the stamp still holds.

A *stamp* is what an entry was computed from: the values of some change *counters* and the
*state* of the thing it shows (a person's unit and role, a bulletin's version). Whoever changes
something bumps the counters (`bump`); an entry is served (`kept`) only while every counter and
the state are what they were when it was kept (`keep`), and only until the clock changes it
(`until`), at most MAX_AGE_SECONDS.

Counters are bumped inside the transaction (so the same request sees the change) and again
after commit (so an entry computed from the old rows meanwhile is not kept); a change made
outside a transaction (committed at once) is bumped once, after it. A counter that Redis loses
restarts at a random value: it never matches an old stamp. Keys carry the database's identity.

The agency counter (`agency_changed`) is bumped by anything that can change what the people of
an agency are told or shown: bulletins published, amended, ended; units moved. A superuser's
entries follow every agency (`ALL_AGENCIES`).
"""

import secrets
from datetime import timedelta
from typing import NamedTuple

from django.core.cache import cache
from django.db import connection, transaction

from portal import database

MAX_AGE_SECONDS = 900
ALL_AGENCIES = "all"


class Stamp(NamedTuple):
    counters: tuple
    state: tuple


def key(*parts):
    return ":".join(["kept", database.identity(), *map(str, parts)])


def agency_counter(agency_id):
    return key("agency", agency_id)


def agency_changed(*agency_ids):
    """Anything kept for the people of these agencies may be out of date."""
    bump(*map(agency_counter, {*agency_ids, ALL_AGENCIES}))


def _start(counter):
    cache.add(counter, secrets.randbits(62), timeout=None)
    return cache.get(counter)


def _bump_now(counters):
    """Add one to each counter (in one round trip where the cache can), starting the missing."""
    if hasattr(cache, "incr_many"):
        missing = [counter for counter, value in cache.incr_many(counters).items() if value is None]
    else:  # the embedded default's file cache
        missing = []
        for counter in counters:
            try:
                cache.incr(counter)
            except ValueError:
                missing.append(counter)
    for counter in missing:
        _start(counter)


def bump(*counters):
    """Bump `counters` now and, inside a transaction, again after it commits."""
    _bump_now(counters)
    if connection.in_atomic_block:  # outside one, the change has committed already
        transaction.on_commit(lambda: _bump_now(counters))


class Batch(dict):
    """Cache entries read together in one round trip (those of `keys` that exist), for several
    `kept` calls of one request: the page's banners and counts cost one round trip, not one each.
    """

    def __init__(self, keys):
        self.asked = frozenset(keys)
        super().__init__(cache.get_many(list(self.asked)) if self.asked else {})


def read(counters, state, *keys, batch=None):
    """(the current Stamp, {key: entry} of those of `keys` that exist), in one round trip, or
    none when `batch` has read them all."""
    wanted = [*counters, *keys]
    if batch is not None and batch.asked.issuperset(wanted):
        found = batch
    else:
        found = cache.get_many(wanted)
    values = tuple(found.get(counter) or _start(counter) for counter in counters)
    return Stamp(values, tuple(state)), found


def holds(entry, stamp, now):
    """Whether `entry` was kept under `stamp` and has not run out by `now`."""
    return entry is not None and entry["stamp"] == stamp and now.timestamp() < entry["until"]


def kept(counters, state, entry_key, now, *, batch=None):
    """(the current Stamp, the entry under `entry_key` if it `holds`, else None)."""
    stamp, found = read(counters, state, entry_key, batch=batch)
    entry = found.get(entry_key)
    return stamp, entry if holds(entry, stamp, now) else None


def keep(entry_key, stamp, *, now, until, **parts):
    """Keep `parts` under `entry_key` and `stamp` until `until` (at most MAX_AGE_SECONDS)."""
    timeout = max(1, min(MAX_AGE_SECONDS, int((until - now).total_seconds())))
    entry = {"stamp": stamp, "until": until.timestamp(), **parts}
    cache.set(entry_key, entry, timeout)
    return entry


def until_next(now, moments):
    """How long an entry may live: until the first of `moments` (when the clock changes it),
    and never more than MAX_AGE_SECONDS."""
    return min([now + timedelta(seconds=MAX_AGE_SECONDS), *moments])

"""A bulletin's coverage figures, a read model above the services: kept, and computed again by
the workers while someone watches.

The figures of one bulletin as one scope sees them (the rendered `_coverage_figures.html`) are
kept under a stamp:

- the bulletin's own counter, bumped by every write to its recipient rows (told, opened,
  acknowledged) - `caching.changes.recipients_changed` and `reader_changed`;
- its agency's counter, bumped by publish, amend, lift, the clock and moves in the unit tree -
  `caching.changes.bulletins_changed`, `portal.stamps.agency_changed`;
- the bulletin's version, the version to acknowledge, its status and its end (its state).

A view shows the kept figures

- while the stamp holds, for at most MAX_AGE_SECONDS (the timeline runs to the moment they were
  computed, and the page says when: "Figures as of 22:23:26");
- or, once the counts have moved, for `stale_seconds()` after they were computed: meanwhile the
  workers compute them again (`refresh_watched`, every COVERAGE_REFRESH_SECONDS for every
  bulletin and scope someone looked at in the last WATCH_SECONDS), so at shift change, while
  thousands acknowledge, a commander's page is served from the figures of a few seconds ago and
  the request never scans the 36,000 rows;

and computes them in the request otherwise: the first view, a change of the bulletin's state
(amended, lifted, ended: never shown from before it), or workers that have fallen behind. Who is
on leave is read at every view: the kept figures carry a placeholder there (`fill_on_leave`).
"""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from bulletins import permissions
from bulletins.caching.changes import recipients_counter
from bulletins.services import tracking
from portal import stamps
from portal.models import User
from portal.scope import scope_root

MAX_AGE_SECONDS = 60
REFRESH_AFTER_SECONDS = 30  # the workers compute unchanged figures again at this age
WATCH_SECONDS = 120  # a page open refreshes every 30 s, and so stays watched
ON_LEAVE_PLACEHOLDER = "\x00on-leave\x00"


def stale_seconds():
    """How long figures whose counts have moved are still shown: three of the workers' runs."""
    return 3 * settings.COVERAGE_REFRESH_SECONDS


def scope_of(user):
    """Everyone whose scope has the same root sees the same figures."""
    if user.is_superuser:
        return "all"
    root = scope_root(user)
    return root.pk if root is not None else "none"


def _key(bulletin_id, scope):
    return stamps.key("coverage", bulletin_id, scope)


def _watch_key(bulletin_id, scope):
    return stamps.key("coverage-watch", bulletin_id, scope)


def _watched_key():
    return stamps.key("coverage-watched")


def _read(bulletin, scope, *keys):
    counters = [stamps.agency_counter(bulletin.agency_id), recipients_counter(bulletin.pk)]
    state = (bulletin.version, bulletin.ack_version, bulletin.status, bulletin.ended_at,
             bulletin.expires_at)  # fmt: skip
    return stamps.read(counters, state, _key(bulletin.pk, scope), *keys)


def _same_state(entry, stamp):
    """The kept entry is of the bulletin as it is now (its counters may have moved)."""
    return entry is not None and entry["stamp"].state == stamp.state


def shown(entry, stamp, now):
    """Whether a view at `now` shows the kept `entry` under the current `stamp`."""
    if not _same_state(entry, stamp):
        return False
    return stamps.holds(entry, stamp, now) or now.timestamp() - entry["as_of"] < stale_seconds()


def figures(bulletin, user, now):
    """The figures of `bulletin` in the scope of `user` ({"html", "outstanding", "as_of"}):
    kept ones if `shown`, else computed now and kept. One round trip to Redis when kept; the
    view also records that the figures are watched, so that the workers keep them current."""
    scope = scope_of(user)
    watch_key = _watch_key(bulletin.pk, scope)
    stamp, found = _read(bulletin, scope, watch_key)
    watch = found.get(watch_key)
    if watch is None or now.timestamp() - watch["at"] >= WATCH_SECONDS / 2:
        _watch(bulletin.pk, scope, user, now)  # renewed before it runs out: no gap
    entry = found.get(_key(bulletin.pk, scope))
    if shown(entry, stamp, now):
        return entry
    return compute(bulletin, user, scope, stamp, now)


def _watch(bulletin_id, scope, user, now):
    """Mark the figures of (bulletin, scope) as looked at by `user`, for WATCH_SECONDS."""
    watch = {"user": user.pk, "at": now.timestamp()}
    cache.set(_watch_key(bulletin_id, scope), watch, WATCH_SECONDS)
    watched = cache.get(_watched_key()) or set()
    if (bulletin_id, scope) not in watched:
        cache.set(_watched_key(), watched | {(bulletin_id, scope)}, 24 * 3600)


def compute(bulletin, user, scope, stamp, now):
    """Compute the figures (one GROUP BY over the recipients in scope), render and keep them."""
    recipients = permissions.bulletin_recipients_in_scope(user, bulletin)
    coverage = tracking.Coverage(bulletin, recipients, now=now)
    summary = coverage.summary(on_leave=False)
    context = {
        "bulletin": bulletin,
        "as_of": now,
        "summary": summary,
        "on_leave_placeholder": ON_LEAVE_PLACEHOLDER,
        "versions": coverage.versions(),
        "units": tracking.group_breakdown(coverage.units()),
        "timeline": coverage.timeline(),
    }
    # No request: the figures are shared by everyone of the scope, so nothing of the viewer.
    html = render_to_string("bulletins/_coverage_figures.html", context)
    return stamps.keep(
        _key(bulletin.pk, scope), stamp, now=now, until=now + timedelta(seconds=MAX_AGE_SECONDS),
        html=html, outstanding=summary["outstanding"], as_of=now.timestamp(),
        cannot_comply=summary.get("cannot_comply", 0),
    )  # fmt: skip


def refresh_watched():
    """Compute again the figures looked at within WATCH_SECONDS whose counts have moved, or
    that are REFRESH_AFTER_SECONDS old, each as the person who last looked at them sees them.
    Figures no longer looked at, or whose viewer may no longer follow them, are dropped (the
    next view watches them again). The workers run this every COVERAGE_REFRESH_SECONDS. Returns
    how many it computed."""
    watched = cache.get(_watched_key()) or set()
    keys = {entry: _watch_key(*entry) for entry in watched}
    viewers = cache.get_many(list(keys.values())) if keys else {}
    watching = defaultdict(set)  # viewer -> the bulletins they watch
    for (bulletin_id, _), key in keys.items():
        if key in viewers:
            watching[viewers[key]["user"]].add(bulletin_id)
    people = User.objects.in_bulk(watching)
    # One query per viewer: which of the bulletins they watch they may still follow.
    followed = {
        pk: permissions.trackable_bulletins(user).in_bulk(watching[pk])
        for pk, user in people.items()
        if user.is_active
    }
    dropped, computed = set(), 0
    for (bulletin_id, scope), key in sorted(keys.items(), key=str):
        viewer = viewers[key]["user"] if key in viewers else None
        user, bulletin = people.get(viewer), followed.get(viewer, {}).get(bulletin_id)
        if bulletin is None or scope_of(user) != scope:
            dropped.add((bulletin_id, scope))
            continue
        stamp, found = _read(bulletin, scope)
        entry, now = found.get(_key(bulletin_id, scope)), timezone.now()
        if (
            entry is None
            or entry["stamp"] != stamp
            or now.timestamp() - entry.get("as_of", 0) >= REFRESH_AFTER_SECONDS
        ):
            compute(bulletin, user, scope, stamp, now)
            computed += 1
    # Read again: a view may have added one meanwhile. One added between that read and this
    # write is lost until its page renews its watch (a minute), computing in the request meanwhile.
    if dropped:
        cache.delete_many([keys[entry] for entry in dropped])
        cache.set(_watched_key(), (cache.get(_watched_key()) or set()) - dropped, 24 * 3600)
    return computed


def fill_on_leave(html, on_leave):
    """The kept figures with how many of the outstanding are on leave, read now."""
    hint = format_html(' <span class="hint">({} on leave)</span>', on_leave) if on_leave else ""
    return mark_safe(html.replace(ON_LEAVE_PLACEHOLDER, hint))  # noqa: S308 - our own rendering

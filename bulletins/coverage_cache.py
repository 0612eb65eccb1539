"""A bulletin's coverage figures, kept while nothing they count has changed.

The figures of one bulletin as one scope sees them (the rendered `_coverage_figures.html`) are
kept under a stamp and served while the stamp still holds:

- the bulletin's own counter, bumped by every write to its recipient rows (told, opened,
  acknowledged) - `recipients_changed(bulletin_id)`;
- the agency-wide counter of the feed cache, bumped by publish, amend, lift, the clock and moves
  in the unit tree - `feed_cache.bulletins_changed()`;
- the bulletin's version, the version to acknowledge, its status and its end;

and for at most MAX_AGE_SECONDS, since the timeline runs to the moment the figures were
computed (the page says when). Who is on leave is read at every view: the kept figures carry a
mark in its place (`fill_on_leave`). A commander's page refreshes every 30 s; while officers
acknowledge, each refresh recomputes, and when they stop, the figures cost one Redis round trip.
"""

from datetime import timedelta

from django.utils.html import format_html
from django.utils.safestring import mark_safe

from bulletins import feed_cache, permissions

MAX_AGE_SECONDS = 60
ON_LEAVE_MARK = "\x00on-leave\x00"


def recipients_key(bulletin_id):
    return feed_cache.cache_key("recipients", bulletin_id)


def recipients_changed(bulletin_id):
    """Someone was told, opened or acknowledged `bulletin_id`: its figures changed."""
    feed_cache.bump_counter(recipients_key(bulletin_id))


def _scope(user):
    """Everyone whose scope has the same root sees the same figures."""
    if user.is_superuser:
        return "all"
    root = permissions.scope_root(user)
    return root.pk if root is not None else "none"


def lookup(bulletin, user, now):
    """(stamp, the kept figures if still good, else None), in one round trip to Redis."""
    counters = [feed_cache.cache_key("changed"), recipients_key(bulletin.pk)]
    state = (bulletin.version, bulletin.ack_version, bulletin.status, bulletin.ended_at,
             bulletin.expires_at)  # fmt: skip
    return feed_cache.kept(counters, state, _key(bulletin, user), now)


def store(bulletin, user, stamp, *, now, **parts):
    """Keep `parts` (html, outstanding, ...) for the scope of `user` under `stamp`."""
    until = now + timedelta(seconds=MAX_AGE_SECONDS)
    return feed_cache.keep(_key(bulletin, user), stamp, now=now, until=until, **parts)


def _key(bulletin, user):
    return feed_cache.cache_key("coverage", bulletin.pk, _scope(user))


def fill_on_leave(html, on_leave):
    """The kept figures with how many of the outstanding are on leave, read now."""
    hint = format_html(' <span class="hint">({} on leave)</span>', on_leave) if on_leave else ""
    return mark_safe(html.replace(ON_LEAVE_MARK, hint))  # noqa: S308 - our own rendering

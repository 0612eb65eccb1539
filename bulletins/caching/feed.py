"""The officer's feed page, its polled items and the urgent banner, kept per person: an
unchanged feed is served without the ORM or the template.

Each is kept under the person's stamp (`portal.stamps`): their agency's counter (publish, amend,
lift, take effect, end, review, re-affirm, units moved), their own counter (they opened or
acknowledged something), and the fields that decide their audience and header. It is served
until the clock next changes it - a live bulletin taking effect or ending - and at most
MAX_AGE_SECONDS.

What differs from one serving to the next is left as a placeholder in the kept page and filled
in each time: the request's CSRF token, and every age ("in force 5 minutes", `age_placeholder`).
A page shown with a message (shown once) is neither served from nor kept.
"""

import re
from datetime import UTC, datetime

from django.contrib import messages
from django.db.models import Exists, Min, OuterRef, Q
from django.middleware.csrf import get_token
from django.utils.timesince import timesince

from bulletins.caching.changes import reader_counter
from bulletins.models import Bulletin, Recipient
from portal import stamps

CSRF_PLACEHOLDER = "\x00csrf-token\x00"
AGE_PLACEHOLDER = re.compile("\x00age:([0-9.]+)\x00")
URGENT_SHOWN = 3


def _counters(user):
    agency = stamps.ALL_AGENCIES if user.is_superuser else user.agency_id
    return [stamps.agency_counter(agency), reader_counter(user.pk)]


def _state(user):
    return (user.unit_id, user.role, user.member_class, user.is_active, user.is_superuser,
            user.name)  # fmt: skip


def _kept(user, part, now, batch=None):
    return stamps.kept(
        _counters(user), _state(user), stamps.key("feed", part, user.pk), now, batch=batch
    )


def urgent_keys(user):
    """What `urgent_banner` reads from the cache (for a `stamps.Batch`)."""
    return [*_counters(user), stamps.key("feed", "urgent", user.pk)]


def _keep(user, part, stamp, *, now, until, **parts):
    stamps.keep(stamps.key("feed", part, user.pk), stamp, now=now, until=until, **parts)


def page(request, now, build):
    """The feed page's HTML: the kept one while its stamp holds, else `build()`'s, kept.
    `build()` returns (items, html); items is {"etag", "html"}, the polled part."""
    stamp, entry = _kept(request.user, "page", now)
    has_messages = bool(len(messages.get_messages(request)))
    if entry and entry["page"] and not has_messages:
        return fill_ages(entry["page"].replace(CSRF_PLACEHOLDER, get_token(request)), now)
    items, html = build()
    kept_page = None if has_messages else html.replace(get_token(request), CSRF_PLACEHOLDER)
    _keep(request.user, "page", stamp, now=now, until=valid_until(now), items=items,
          page=kept_page)  # fmt: skip
    return fill_ages(html, now)


def items(user, now, build):
    """The polled part of the feed, {"etag", "html"} as of `now`: the kept one while its stamp
    holds, else `build()`'s, kept (the page is built again on its next view)."""
    stamp, entry = _kept(user, "page", now)
    if entry:
        kept = entry["items"]
    else:
        kept = build()
        _keep(user, "page", stamp, now=now, until=valid_until(now), items=kept, page=None)
    return {"etag": kept["etag"], "html": fill_ages(kept["html"], now)}


def valid_until(now):
    """The next time the clock changes which bulletins are in force (or MAX_AGE_SECONDS)."""
    upcoming = Bulletin.objects.filter(status__in=Bulletin.LIVE_STATUSES).aggregate(
        start=Min("effective_at", filter=Q(effective_at__gt=now)),
        end=Min("expires_at", filter=Q(expires_at__gt=now)),
    )
    return stamps.until_next(now, filter(None, upcoming.values()))


def age_placeholder(since):
    return f"\x00age:{since.timestamp()}\x00"


def fill_ages(html, now):
    """The page as of `now`: each age placeholder becomes "5 minutes", "2 days", ..."""
    return AGE_PLACEHOLDER.sub(
        lambda mark: timesince(datetime.fromtimestamp(float(mark[1]), UTC), now, depth=1), html
    )


def immediate_orders(user, now):
    """ "Officer safety - immediate" Orders addressed to `user` that they have not acknowledged
    and that have not ended by `now`, latest first; some may not have taken effect yet."""
    acknowledged = Recipient.objects.filter(
        bulletin=OuterRef("pk"), user=user, acknowledged_version__gte=OuterRef("ack_version")
    )
    return list(
        Bulletin.objects.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            status__in=Bulletin.LIVE_STATUSES,
            kind=Bulletin.Kind.ORDER,
            priority=Bulletin.Priority.IMMEDIATE,
        )
        .addressed_to(user)
        .exclude(Exists(acknowledged))
        .only("id", "title", "effective_at", "expires_at")
        .order_by("-effective_at")
    )


def urgent_banner(user, now, *, batch=None):
    """The banner's Orders as [{pk, title}]: those of `immediate_orders` in force, kept under
    the person's stamp until the clock next starts or ends one of them. One query when it
    changes; unchanged, one Redis round trip (none with a `batch` that read `urgent_keys`)."""
    stamp, entry = _kept(user, "urgent", now, batch)
    if entry is not None:
        return entry["bulletins"]
    orders = immediate_orders(user, now)
    in_force = [order for order in orders if order.effective_at <= now]
    bulletins = [{"pk": order.pk, "title": order.title} for order in in_force[:URGENT_SHOWN]]
    moments = [order.effective_at for order in orders if order.effective_at > now]
    moments += [order.expires_at for order in in_force if order.expires_at]
    _keep(user, "urgent", stamp, now=now, until=stamps.until_next(now, moments),
          bulletins=bulletins)  # fmt: skip
    return bulletins

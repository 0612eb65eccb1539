from datetime import timedelta
from functools import partial

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from bulletins.caching import feed as kept_feed
from bulletins.models import Bulletin
from portal.stamps import MAX_AGE_SECONDS

register = template.Library()

PRIORITY_ICONS = {
    Bulletin.Priority.IMMEDIATE: "\u26a0",  # warning sign
    Bulletin.Priority.PRIORITY: "\u25b2",  # up triangle
    Bulletin.Priority.ROUTINE: "\u25cf",  # dot
}
PRIORITY_CLASSES = {
    Bulletin.Priority.IMMEDIATE: "immediate",
    Bulletin.Priority.PRIORITY: "priority",
    Bulletin.Priority.ROUTINE: "routine",
}


@register.inclusion_tag("bulletins/_priority.html")
def priority_badge(bulletin):
    return {
        "icon": PRIORITY_ICONS[bulletin.priority],
        "css": PRIORITY_CLASSES[bulletin.priority],
        "label": bulletin.get_priority_display(),
    }


def _local(moment):
    return timezone.localtime(moment)


def _age(since, *, now):
    return timesince(since, now, depth=1)


def _since(moment, *, now):
    """ "06:41" today, "Thu 03 Dec 06:41" before (the agency's clock). A kept page is served
    for up to MAX_AGE_SECONDS: close to midnight it says the day too."""
    local = _local(moment)
    later = _local(now + timedelta(seconds=MAX_AGE_SECONDS))
    if local.date() == _local(now).date() == later.date():
        return f"{local:%H:%M}"
    return f"{local:%a %d %b %H:%M}"


@register.simple_tag
def time_span(bulletin, now, ages_later=False):
    """Plain words for a bulletin's time: "In force since 06:41 - until further notice".

    `ages_later`: leave a placeholder for each age, filled in when the page is served (the kept
    feed page serves while the ages tick on)."""
    ago = kept_feed.age_placeholder if ages_later else partial(_age, now=now)
    state = bulletin.state_at(now)
    if state == Bulletin.Status.DRAFT:
        return "Draft - not published"
    if state == Bulletin.Status.SCHEDULED:
        return f"Takes effect {_local(bulletin.effective_at):%a %d %b %H:%M}"
    if state == Bulletin.Status.LIFTED:
        return f"Lifted {_local(bulletin.ended_at):%a %d %b %H:%M}"
    if state == Bulletin.Status.EXPIRED:
        ended = bulletin.ended_at or bulletin.expires_at
        return f"Ended {_local(ended):%a %d %b %H:%M}"
    since = f"In force since {_since(bulletin.effective_at, now=now)}"
    if bulletin.expires_at is None:
        span = f"{since} - until further notice"
        if bulletin.last_reaffirmed_at:
            span += f", last re-affirmed {ago(bulletin.last_reaffirmed_at)} ago"
            if bulletin.last_reaffirmed_by_id:
                span += f" by {bulletin.last_reaffirmed_by.name}"
        return span
    return f"{since} - ends {_local(bulletin.expires_at):%a %d %b %H:%M}"


@register.filter
def interval_words(interval):
    """A review interval in the form's words: "1 hour", "72 hours"."""
    hours = int(interval.total_seconds() // 3600)
    return "1 hour" if hours == 1 else f"{hours} hours"


@register.filter
def state_label(state):
    return Bulletin.Status(state).label if state else ""


@register.filter
def indent(unit_depths, unit_id):
    """Nesting depth of a unit in a form's unit list (1 = agency)."""
    return unit_depths.get(unit_id, 1)


@register.filter
def state_at(bulletin, now):
    return bulletin.state_at(now)


@register.inclusion_tag("bulletins/_ack_chart.html")
def ack_chart(timeline, audience, width=600, height=160):
    """Cumulative acknowledgements as an SVG line (drawn on the server, no script)."""
    pad = 28
    last_minute = timeline[-1][0] or 1
    top = max(audience, 1)
    points = [
        (
            round(pad + (width - 2 * pad) * minute / last_minute, 1),
            round(height - pad - (height - 2 * pad) * count / top, 1),
        )
        for minute, count in timeline
    ]
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "points": " ".join(f"{x},{y}" for x, y in points),
        "last_minute": last_minute,
        "audience": audience,
        "final": timeline[-1][1],
        "baseline": height - pad,
        "right": width - pad,
    }


@register.filter
def obligation_at(recipient, now):
    return recipient.obligation_at(now)


UNIT_ROW = (
    '<tr class="depth-{}"><th scope="row">{}</th><td>{}</td><td>{}</td><td>{} ({}%)</td>'
    "<td>{}</td><td>{}</td>{}</tr>"
)
OUTSTANDING_LINK = (
    '<a href="{}?unit={}">{}<span class="visually-hidden"> not yet acknowledged in {}</span></a>'
)


@register.simple_tag
def unit_rows(rows, outstanding_url, implemented=False):
    """The rows of a coverage table by unit, each outstanding count linking to who it is (then
    who cannot comply, and with `implemented` how many reported it implemented of those asked).
    An agency has a hundred units or more: built here rather than in a template loop (a third
    of the dashboard's rendering time)."""

    def outstanding(row):
        if not row["outstanding"]:
            return "0"
        return format_html(
            OUTSTANDING_LINK, outstanding_url, row["unit"].pk, row["outstanding"], row["unit"].name
        )

    def reported(row):
        if not implemented:
            return ""
        return format_html("<td>{} of {}</td>", row.get("implemented", 0), row.get("required", 0))

    return format_html_join(
        "\n",
        UNIT_ROW,
        (
            (row["depth"], row["unit"].name, row["audience"], row["opened"], row["acknowledged"],
             row["percent"], row.get("cannot_comply", 0), outstanding(row), reported(row))
            for row in rows
        ),
    )  # fmt: skip

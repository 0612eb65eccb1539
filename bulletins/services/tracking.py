"""Acknowledgement coverage: who was told, who opened, who acknowledged, who is outstanding.

Every figure is one GROUP BY or aggregate over the recipient table (indexed by bulletin), so a
dashboard costs the same few queries whatever the audience size.
"""

from datetime import timedelta

from django.db.models import Count, Q

from bulletins.models import BulletinVersion, Recipient
from portal.models import Unit

BUCKETS = (15, 30, 60)


def acknowledged_q(bulletin):
    """Recipients who acknowledged the latest material version (or a later one)."""
    return Q(acknowledged_version__gte=bulletin.ack_version)


def outstanding_q(bulletin):
    return Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=bulletin.ack_version)


def in_effect_since(bulletin):
    """When the current material version took effect: the bulletin's start, or the material
    amendment that asked everyone to acknowledge again."""
    if not hasattr(bulletin, "_in_effect_since"):
        amended = (
            BulletinVersion.objects.filter(bulletin=bulletin, number=bulletin.ack_version)
            .values_list("created_at", flat=True)
            .first()
        )
        bulletin._in_effect_since = max(filter(None, [bulletin.effective_at, amended]))
    return bulletin._in_effect_since


def coverage_summary(bulletin, recipients=None):
    """The headline figures of one bulletin, in one query.

    `recipients` narrows the audience (a supervisor's scope); by default everyone told.
    """
    rows = recipients if recipients is not None else Recipient.objects.filter(bulletin=bulletin)
    acknowledged = acknowledged_q(bulletin)
    since = in_effect_since(bulletin)
    buckets = {
        f"within_{minutes}": Count(
            "pk", filter=acknowledged & Q(acknowledged_at__lte=since + timedelta(minutes=minutes))
        )
        for minutes in BUCKETS
    }
    figures = rows.aggregate(
        audience=Count("pk"),
        opened=Count("pk", filter=Q(first_opened_at__isnull=False)),
        acknowledged=Count("pk", filter=acknowledged),
        earlier_version_only=Count("pk", filter=Q(acknowledged_version__lt=bulletin.ack_version)),
        on_leave=Count("pk", filter=outstanding_q(bulletin) & Q(user__is_on_leave=True)),
        **buckets,
    )
    figures["outstanding"] = figures["audience"] - figures["acknowledged"]
    figures["percent"] = _percent(figures["acknowledged"], figures["audience"])
    return figures


def _percent(part, whole):
    return round(100 * part / whole) if whole else 0


def version_split(bulletin, recipients):
    """How many people acknowledged each version; None = never acknowledged any."""
    rows = recipients.values("acknowledged_version").annotate(people=Count("pk"))
    split = {row["acknowledged_version"]: row["people"] for row in rows}
    return [
        {
            "version": number,
            "people": split.get(number, 0),
            "is_current": number is not None and number >= bulletin.ack_version,
        }
        for number in [*range(bulletin.version, 0, -1), None]
    ]


def unit_breakdown(bulletin, recipients):
    """Counts per unit, rolled up the tree (borough -> precinct -> squad): [{unit, depth, ...}]."""
    acknowledged = acknowledged_q(bulletin)
    per_unit = recipients.values("unit_id").annotate(
        audience=Count("pk"),
        opened=Count("pk", filter=Q(first_opened_at__isnull=False)),
        acknowledged=Count("pk", filter=acknowledged),
    )
    direct = {row["unit_id"]: row for row in per_unit}
    units = Unit.objects.filter(pk__in=direct).only("path")
    paths = {unit.path for unit in units}
    ancestors = {
        path[:end] for path in paths for end in range(Unit.steplen, len(path) + 1, Unit.steplen)
    }
    tree = {unit.path: unit for unit in Unit.objects.filter(path__in=ancestors).order_by("path")}
    totals = {path: {"audience": 0, "opened": 0, "acknowledged": 0} for path in tree}
    for unit in units:
        counts = direct[unit.pk]
        for end in range(Unit.steplen, len(unit.path) + 1, Unit.steplen):
            for key in ("audience", "opened", "acknowledged"):
                totals[unit.path[:end]][key] += counts[key]
    return [
        {
            "unit": unit,
            "depth": unit.depth,
            **totals[path],
            "outstanding": totals[path]["audience"] - totals[path]["acknowledged"],
            "percent": _percent(totals[path]["acknowledged"], totals[path]["audience"]),
        }
        for path, unit in tree.items()
    ]


OUTSTANDING_ORDER = {
    "name": ("user__name",),
    "badge": ("user__badge",),
    "unit": ("unit__path", "user__name"),
    "opened": ("first_opened_at", "user__name"),
    "reminders": ("-reminder_count", "user__name"),
}


def outstanding_people(bulletin, recipients, *, sort="unit", unit=None, opened=None):
    """People who have not acknowledged the current version, with what was done to chase them."""
    rows = recipients.filter(outstanding_q(bulletin))
    if unit is not None:
        rows = rows.filter(unit__path__startswith=unit.path)
    if opened is not None:
        rows = rows.filter(first_opened_at__isnull=not opened)
    return (
        rows.select_related("user", "unit")
        .annotate(
            reminder_count=Count(
                "reminders", filter=Q(reminders__version=bulletin.ack_version), distinct=True
            )
        )
        .order_by(*OUTSTANDING_ORDER.get(sort, OUTSTANDING_ORDER["unit"]))
    )


def acknowledgement_timeline(bulletin, recipients, *, points=24, now):
    """Cumulative acknowledgements of the current version over time: [(minutes, count)], one
    aggregate query (a conditional count per point)."""
    start = in_effect_since(bulletin)
    end = min(now, bulletin.ended_at or bulletin.expires_at or now)
    step = max((end - start).total_seconds(), 60) / points
    limits = [start + timedelta(seconds=step * point) for point in range(points + 1)]
    counts = recipients.filter(acknowledged_q(bulletin)).aggregate(
        **{
            f"p{point}": Count("pk", filter=Q(acknowledged_at__lte=limit))
            for point, limit in enumerate(limits)
        }
    )
    return [(round(step * point / 60), counts[f"p{point}"]) for point in range(points + 1)]


def group_breakdown(rows):
    """Nest a flat breakdown for display: the top row, then each next-level unit with the
    units below it (so boroughs expand to precincts and squads)."""
    if not rows:
        return None, []
    top_depth = min(row["depth"] for row in rows)
    top = [row for row in rows if row["depth"] == top_depth]
    groups = []
    for row in rows:
        if row["depth"] == top_depth + 1:
            groups.append({"row": row, "below": []})
        elif row["depth"] > top_depth + 1 and groups:
            groups[-1]["below"].append(row)
    return (top[0] if len(top) == 1 else None), groups

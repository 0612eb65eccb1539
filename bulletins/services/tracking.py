"""Acknowledgement coverage: who was told, who opened, who acknowledged, who is outstanding.

Every figure of a dashboard comes from one GROUP BY over the bulletin's recipient rows (indexed
by bulletin): people counted by unit, acknowledged version, opened or not, and the time slot of
their acknowledgement. The headline figures, the split by version, the rolled-up unit tree and
the timeline are sums over those few hundred groups, so a dashboard costs one scan of its own
recipients whatever the audience size and however much history the table holds.
"""

from datetime import timedelta
from itertools import accumulate

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    Q,
    When,
)

from bulletins.models import Bulletin, BulletinVersion, Receipt, Recipient, Reminder, Response
from bulletins.services import answers_tracking
from portal import database, tours
from portal.models import Unit, User

BUCKETS = (15, 30, 60)
TIMELINE_POINTS = 24
MICROSECOND = timedelta(microseconds=1)
ImplementedFrom = Bulletin.ImplementedFrom
_FROM_SUPERVISORS = (ImplementedFrom.SUPERVISORS, ImplementedFrom.UNITS)


def outstanding_q(bulletin):
    """Who is outstanding: of an Order, whoever has not acknowledged its current material
    version nor answered "I cannot comply" (counted apart, see `Coverage`); of a bulletin that
    asks only to be read (Advisory, Information, Intelligence), whoever has not opened it."""
    if not bulletin.requires_acknowledgement:
        return Q(first_opened_at__isnull=True)
    cannot = answers_tracking.answers_of(bulletin, Response.Kind.CANNOT_COMPLY)
    return not_acknowledged_q(bulletin) & ~Exists(cannot)


def not_acknowledged_q(bulletin):
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


class WidthBucket(Func):
    """PostgreSQL's `width_bucket(timestamp, limits[])`: how many limits lie at or before it."""

    output_field = IntegerField()

    def __init__(self, expression, limits):
        super().__init__(expression)
        self.limits = list(limits)

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"width_bucket({sql}, %s::timestamptz[])", (*params, self.limits)


def slot(field, limits, *, vendor=None):
    """The slot of a timestamp among ascending `limits`: `field <= limits[k]` exactly when the
    slot is <= k (only meaningful where the timestamp is set). `vendor` picks the form (by
    default the database's): width_bucket where it has one (PostgreSQL), a CASE anywhere."""
    if database.has_width_bucket(vendor):
        # width_bucket counts limits <= the value; timestamps have microsecond resolution, so
        # shifting each limit by one microsecond counts the limits strictly before it.
        return WidthBucket(F(field), [limit + MICROSECOND for limit in limits])
    whens = [When(**{f"{field}__lte": limit}, then=k) for k, limit in enumerate(limits)]
    return Case(*whens, default=len(limits), output_field=IntegerField())


def timeline_limits(bulletin, *, now, points=TIMELINE_POINTS):
    """The moments of the acknowledgement timeline: `points` equal steps from when the current
    version took effect to now (or the bulletin's end)."""
    start = in_effect_since(bulletin)
    end = min(now, bulletin.ended_at or bulletin.expires_at or now)
    step = max((end - start).total_seconds(), 60) / points
    return [start + timedelta(seconds=step * point) for point in range(points + 1)]


def tally(recipients, limits):
    """The one GROUP BY behind every figure: [(unit_id, acknowledged_version, slot, people,
    opened, at_roll_call, on_paper)], where `slot` places the acknowledgement among `limits`
    (see `slot`) and the last two count how the acknowledgements were made (FILTER
    aggregates of the same scan: roll call, paper recorded by a sergeant)."""
    Method = Receipt.Method
    return list(
        recipients.order_by()
        .annotate(ack_slot=slot("acknowledged_at", limits))
        .values("unit_id", "acknowledged_version", "ack_slot")
        .annotate(
            people=Count("pk"),
            opened=Count("first_opened_at"),
            at_roll_call=Count("pk", filter=Q(acknowledged_method=Method.ROLL_CALL)),
            on_paper=Count("pk", filter=Q(acknowledged_method=Method.PAPER)),
        )
        .values_list(
            "unit_id", "acknowledged_version", "ack_slot", "people", "opened", "at_roll_call",
            "on_paper",
        )
    )  # fmt: skip


# What is counted per unit. Of an Order, each person told is in exactly one of: acknowledged,
# cannot comply (not acknowledged; an open answer, or only resolved ones), outstanding.
# "implemented" of "required": people, or for "units" one per unit (0 or 1 each).
KEYS = ("audience", "opened", "acknowledged", "cannot_open", "cannot_resolved", "implemented",
        "required")  # fmt: skip


class Coverage:
    """Every figure of one bulletin's coverage, from one `tally` (plus, of an Order, the small
    `answers_tracking.answer_tally`, the reporters when only supervisors report, the check of
    understanding when it has one, and a count of the outstanding on leave when anyone is on
    leave). `now` adds the timeline. Of a bulletin that asks only to be read, "outstanding"
    and "percent" count who has not / has opened it."""

    def __init__(self, bulletin, recipients, *, now=None):
        self.bulletin = bulletin
        self.recipients = recipients
        since = in_effect_since(bulletin)
        self.marks = [since + timedelta(minutes=minutes) for minutes in BUCKETS]
        self.timeline_at = timeline_limits(bulletin, now=now) if now is not None else []
        self.limits = sorted(set(self.marks + self.timeline_at))
        current = bulletin.ack_version
        self.earlier = self.at_roll_call = self.on_paper = 0
        self.by_version, self.by_unit = {}, {}
        in_slot = [0] * (len(self.limits) + 1)
        for unit_id, version, ack_slot, people, opened, *how in tally(recipients, self.limits):
            is_current = version is not None and version >= current
            self.by_version[version] = self.by_version.get(version, 0) + people
            counts = self._unit(unit_id)
            counts["audience"] += people
            counts["opened"] += opened
            if is_current:
                counts["acknowledged"] += people
                if ack_slot is not None:  # an acknowledgement always has its time
                    in_slot[ack_slot] += people
                self.at_roll_call += how[0]
                self.on_paper += how[1]
            elif version is not None:
                self.earlier += people
        if bulletin.requires_acknowledgement:
            self._count_answers()
        # {limit: how many acknowledged the current version at or before it}
        self.by_limit = dict(zip(self.limits, accumulate(in_slot), strict=False))
        self.totals = {key: sum(c[key] for c in self.by_unit.values()) for key in KEYS}
        self.audience, self.opened = self.totals["audience"], self.totals["opened"]
        self.acknowledged = self.totals["acknowledged"]

    def _unit(self, unit_id):
        return self.by_unit.setdefault(unit_id, dict.fromkeys(KEYS, 0))

    def _count_answers(self):
        answers = answers_tracking.answer_tally(self.bulletin, self.recipients)
        for unit_id, is_current, has_open, has_cannot, reported, people in answers:
            counts = self._unit(unit_id)
            if has_cannot and not is_current:
                counts["cannot_open" if has_open else "cannot_resolved"] += people
            if reported:
                counts["implemented"] += people
        required = self.bulletin.implemented_from
        reporters = (
            answers_tracking.reporters_by_unit(self.recipients)
            if required in _FROM_SUPERVISORS
            else {}
        )
        for unit_id, counts in self.by_unit.items():
            if required == ImplementedFrom.EVERYONE:
                counts["required"] = counts["audience"]
            elif required == ImplementedFrom.SUPERVISORS:
                counts["required"] = reporters.get(unit_id, 0)
            elif required == ImplementedFrom.UNITS:
                counts["required"] = min(reporters.get(unit_id, 0), 1)
            # A report by someone no longer asked (their role changed) is not counted.
            counts["implemented"] = min(counts["implemented"], counts["required"])

    def summary(self, *, on_leave=True):
        """The headline figures; `on_leave=False` leaves out the outstanding on leave (a
        query of its own, see `outstanding_on_leave`)."""
        totals, bulletin = self.totals, self.bulletin
        audience, acknowledged = self.audience, self.acknowledged
        done = acknowledged if bulletin.requires_acknowledgement else self.opened
        cannot = totals["cannot_open"] + totals["cannot_resolved"]
        outstanding = audience - done - cannot
        figures = {
            "asks_acknowledgement": bulletin.requires_acknowledgement,
            "audience": audience,
            "opened": self.opened,
            "acknowledged": acknowledged,
            "acknowledged_at_roll_call": self.at_roll_call,
            "acknowledged_on_paper": self.on_paper,
            "earlier_version_only": self.earlier,
            "cannot_comply": cannot,
            "cannot_comply_open": totals["cannot_open"],
            "cannot_comply_resolved": totals["cannot_resolved"],
            "outstanding": outstanding,
            "percent": _percent(done, audience),
            "read_percent": _percent(self.opened, audience),
            "implemented_from": bulletin.implemented_from if bulletin.requires_acknowledgement
            else ImplementedFrom.NOBODY,
            "implemented": totals["implemented"],
            "implemented_required": totals["required"],
            "implemented_percent": _percent(totals["implemented"], totals["required"]),
            "not_reported": totals["required"] - totals["implemented"],
            "quiz": (
                answers_tracking.quiz_figures(bulletin, self.recipients)
                if bulletin.requires_acknowledgement and bulletin.questions
                else None
            ),
            "on_leave": (
                outstanding_on_leave(bulletin, self.recipients)
                if on_leave and outstanding
                else 0
            ),
        }  # fmt: skip
        for minutes, mark in zip(BUCKETS, self.marks, strict=True):
            figures[f"within_{minutes}"] = self.by_limit[mark]
        return figures

    def versions(self):
        """How many people acknowledged each version; None = never acknowledged any."""
        return [
            {
                "version": number,
                "people": self.by_version.get(number, 0),
                "is_current": number is not None and number >= self.bulletin.ack_version,
            }
            for number in [*range(self.bulletin.version, 0, -1), None]
        ]

    def units(self):
        """Counts per unit, rolled up the tree (borough -> precinct -> squad):
        [{unit, depth, ..., "own": the counts of the people told in the unit itself}]."""
        return _roll_up(
            self.by_unit,
            done="acknowledged" if self.bulletin.requires_acknowledgement else "opened",
        )

    def timeline(self):
        """Cumulative acknowledgements of the current version: [(minutes, count)]."""
        if not self.timeline_at:
            return []
        start = self.timeline_at[0]
        return [
            (round((moment - start).total_seconds() / 60), self.by_limit[moment])
            for moment in self.timeline_at
        ]


def outstanding_on_leave(bulletin, recipients):
    """How many of `recipients` are outstanding and on leave. Few people are on leave at once:
    find them first (a small partial index), then their rows of this bulletin by (person,
    bulletin)."""
    away = list(User.objects.filter(is_on_leave=True).order_by().values_list("pk", flat=True))
    if not away:
        return 0
    return recipients.filter(outstanding_q(bulletin), user_id__in=away).count()


def coverage_summary(bulletin, recipients=None):
    """The headline figures of one bulletin. `recipients` narrows the audience (a supervisor's
    scope); by default everyone told."""
    rows = recipients if recipients is not None else Recipient.objects.filter(bulletin=bulletin)
    return Coverage(bulletin, rows).summary()


def _percent(part, whole):
    return round(100 * part / whole) if whole else 0


def _counted(counts, done):
    """Counts with what is outstanding and the share done ("acknowledged" or "opened"); of an
    Order, whoever answered "cannot comply" and has not acknowledged is not outstanding but
    counted apart, so that acknowledged + cannot comply + outstanding = told."""
    cannot = counts["cannot_open"] + counts["cannot_resolved"]
    return {
        **counts,
        "cannot_comply": cannot,
        "outstanding": counts["audience"] - counts[done] - cannot,
        "percent": _percent(counts[done], counts["audience"]),
        "not_reported": counts["required"] - counts["implemented"],
    }


def _roll_up(direct, *, done="acknowledged"):
    """{unit_id: counts} -> one row per unit and every unit above it, with the counts of its
    subtree, in tree order."""
    units = Unit.objects.filter(pk__in=direct).only("path")
    paths = {unit.path for unit in units}
    ancestors = {
        path[:end] for path in paths for end in range(Unit.steplen, len(path) + 1, Unit.steplen)
    }
    tree = {unit.path: unit for unit in Unit.objects.filter(path__in=ancestors).order_by("path")}
    totals = {path: dict.fromkeys(KEYS, 0) for path in tree}
    for unit in units:
        counts = direct[unit.pk]
        for end in range(Unit.steplen, len(unit.path) + 1, Unit.steplen):
            for key in KEYS:
                totals[unit.path[:end]][key] += counts.get(key, 0)
    none = dict.fromkeys(KEYS, 0)
    return [
        {
            "unit": unit,
            "depth": unit.depth,
            **_counted(totals[path], done),
            "own": _counted({**none, **direct.get(unit.pk, none)}, done),
        }
        for path, unit in tree.items()
    ]


# Each order ends with the primary key, so that pages never repeat or skip a person.
OUTSTANDING_ORDER = {
    "name": ("user__name", "pk"),
    "badge": ("user__badge", "pk"),
    "unit": ("unit__path", "user__name", "pk"),
    "opened": ("first_opened_at", "user__name", "pk"),
    "reminders": ("-reminder_count", "user__name", "pk"),
}


def outstanding_people(bulletin, recipients, *, sort="unit", unit=None, opened=None):
    """People who have not acknowledged the current version. Their reminder counts are added
    by `count_reminders` to the page shown (or here, when sorting by them)."""
    rows = recipients.filter(outstanding_q(bulletin))
    if unit is not None:
        rows = rows.filter(unit__path__startswith=unit.path)
    if opened is not None:
        rows = rows.filter(first_opened_at__isnull=not opened)
    if sort == "reminders":
        rows = rows.annotate(
            reminder_count=Count(
                "reminders", filter=Q(reminders__version=bulletin.ack_version), distinct=True
            )
        )
    return rows.select_related("user", "unit").order_by(
        *OUTSTANDING_ORDER.get(sort, OUTSTANDING_ORDER["unit"])
    )


class ByUnit:
    """Outstanding recipient rows in unit order (then name), for a Paginator, without sorting
    them all: their count per unit (one GROUP BY) says which units a page spans, and only those
    units' rows are read and sorted. The first page of 14,400 people then reads a few hundred.
    """

    def __init__(self, rows):
        self.rows = rows.order_by()
        counts = dict(
            self.rows.values("unit_id").annotate(n=Count("pk")).values_list("unit_id", "n")
        )
        in_order = Unit.objects.filter(pk__in=counts).order_by("path").values_list("pk", flat=True)
        self.units = [(pk, counts[pk]) for pk in in_order]
        self.total = sum(counts.values())

    def count(self):
        return self.total

    def __len__(self):
        return self.total

    def __getitem__(self, page):
        start, stop = page.start or 0, min(page.stop, self.total)
        spanned, skip, offset = [], 0, 0
        for pk, people in self.units:
            if offset < stop and offset + people > start:
                if not spanned:
                    skip = start - offset
                spanned.append(pk)
            offset += people
        rows = self.rows.filter(unit_id__in=spanned).select_related("user", "unit")
        ordered = rows.order_by(*OUTSTANDING_ORDER["unit"])
        return list(ordered[skip : skip + max(stop - start, 0)])


def count_reminders(bulletin, recipients):
    """Sets `reminder_count` (reminders about the current version) on each of a page of
    recipients, in one query."""
    recipients = [row for row in recipients if not hasattr(row, "reminder_count")]
    counts = dict(
        Reminder.objects.filter(recipient__in=recipients, version=bulletin.ack_version)
        .values("recipient_id")
        .annotate(n=Count("pk"))
        .values_list("recipient_id", "n")
    )
    for row in recipients:
        row.reminder_count = counts.get(row.pk, 0)


def mark_off_duty(bulletin, recipients, now):
    """Sets `off_duty_until` on each of a page of recipients (with `user` and `unit` loaded):
    when the tour starts of someone told while off duty whose chase waits for it (None for the
    others; `portal.tours.waiting_until`). No query: the tours come from the cache, once per
    agency. Nothing waits with CHASE_OFF_DUTY."""
    book = tours.TourBook()
    for row in recipients:
        row.off_duty_until = None
        if settings.CHASE_OFF_DUTY or not row.user.tour:
            continue
        told_at = max(row.added_at, bulletin.effective_at or row.added_at)
        tour = book.person_tour(row.user, row.unit)
        row.off_duty_until = tours.waiting_until(tour, told_at, now)


def group_breakdown(rows):
    """Nest a flat breakdown for display: the top row, then each next-level unit with the
    units below it (so boroughs expand to precincts and squads). `rows` of a group are what its
    table lists: the units below it, or the unit itself when nothing is below. People told in
    the top unit itself (attached to the agency, not to a unit under it) are a group of their
    own, "attached": {"row", "rows": [], "attached": True}, so that the groups add up."""
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
    for group in groups:
        group["rows"] = group["below"] or [group["row"]]
    for row in top:
        if row.get("own", {}).get("audience"):
            attached = {"unit": row["unit"], "depth": row["depth"], **row["own"]}
            groups.append({"row": attached, "below": [], "rows": [], "attached": True})
    return (top[0] if len(top) == 1 else None), groups

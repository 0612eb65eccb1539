"""Exercises: bulletins marked "Exercise - training, not a real order", and their results.

An exercise is told, acknowledged, chased and tracked like a real bulletin, but its figures
live apart: the coverage overview and a person's record leave exercises out, and this page
shows how each drill went in my scope - the audience, how many acknowledged (or, for a
bulletin that asks only to be read, opened it), how long from taking effect until 50 %,
90 % and 100 % of the audience had, and the "cannot comply" answers by reason.

The times are computed in SQL, one GROUP BY over the recipients of the exercises on the page:
each recipient's delay in seconds (infinity while they have not answered), and the discrete
percentile of those delays. percentile_disc(f) is the smallest delay d with at least f of the
audience at or below d - so it is the moment the f-th share was reached, and infinity ("not
reached") while it has not been.
"""

import math
from datetime import timedelta

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import (
    Aggregate,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    Min,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bulletins import permissions
from bulletins.models import Bulletin, Recipient, Response

PAGE_SIZE = 25
MILESTONES = (50, 90, 100)


class PercentileDisc(Aggregate):
    """PostgreSQL's percentile_disc(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)r) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction, **extra):
        fraction = float(fraction)  # a number written into the SQL: never anything else
        if not 0 < fraction <= 1:
            raise ValueError("A percentile is a fraction in (0, 1].")
        super().__init__(expression, fraction=fraction, **extra)


def _seconds_since(moment, start):
    return Func(
        F(moment) - start,
        template="EXTRACT(EPOCH FROM (%(expressions)s))",
        output_field=FloatField(),
    )


def answer_delay():
    """Seconds from the bulletin taking effect to this recipient's answer: acknowledging the
    current version of an Order, opening any other kind; infinity while they have not."""
    start = Coalesce(F("bulletin__effective_at"), F("bulletin__published_at"))
    return Case(
        When(
            Q(bulletin__kind=Bulletin.Kind.ORDER)
            & Q(acknowledged_version__gte=F("bulletin__ack_version")),
            then=_seconds_since("acknowledged_at", start),
        ),
        When(
            ~Q(bulletin__kind=Bulletin.Kind.ORDER) & Q(first_opened_at__isnull=False),
            then=_seconds_since("first_opened_at", start),
        ),
        default=Cast(Value("Infinity"), FloatField()),
        output_field=FloatField(),
    )


def results(user, bulletins):
    """{bulletin id: {"audience", "answered", "percent", "reached": {50: timedelta|None, ...}}}
    for `bulletins`, over the recipients in the scope of `user`: one query."""
    recipients = permissions.recipients_in_scope(
        user, Recipient.objects.filter(bulletin__in=bulletins)
    )
    delay = answer_delay()
    rows = recipients.values("bulletin_id").annotate(
        audience=Count("pk"),
        answered=Count(
            "pk",
            filter=Q(
                bulletin__kind=Bulletin.Kind.ORDER,
                acknowledged_version__gte=F("bulletin__ack_version"),
            )
            | (~Q(bulletin__kind=Bulletin.Kind.ORDER) & Q(first_opened_at__isnull=False)),
        ),  # fmt: skip
        **{f"p{share}": PercentileDisc(delay, share / 100) for share in MILESTONES},
    )
    figures = {}
    for row in rows.order_by():
        reached = {}
        for share in MILESTONES:
            seconds = row[f"p{share}"]
            reached[share] = (
                None
                if seconds is None or math.isinf(seconds)
                else timedelta(seconds=max(seconds, 0))
            )
        audience, answered = row["audience"], row["answered"]
        figures[row["bulletin_id"]] = {
            "audience": audience,
            "answered": answered,
            "percent": round(100 * answered / audience) if audience else 0,
            "reached": reached,
        }
    return figures


def cannot_comply(user, bulletins):
    """{bulletin id: {"answers": n, "reasons": [(reason, n), ...]}}: the "cannot comply"
    answers to `bulletins` of the people told within the scope of `user`, by reason in the
    agency's order of reasons: one query."""
    told = permissions.recipients_in_scope(
        user,
        Recipient.objects.filter(bulletin_id=OuterRef("bulletin_id"), user_id=OuterRef("user_id")),
    )
    rows = (
        Response.objects.filter(bulletin__in=bulletins, kind=Response.Kind.CANNOT_COMPLY)
        .filter(Exists(told))
        .values("bulletin_id", "reason_label")
        .annotate(answers=Count("pk"), position=Min("reason__position"))
        .order_by("bulletin_id", "position", "reason_label")
    )
    found = {}
    for row in rows:
        figures = found.setdefault(row["bulletin_id"], {"answers": 0, "reasons": []})
        figures["answers"] += row["answers"]
        figures["reasons"].append((row["reason_label"], row["answers"]))
    return found


def duration_text(delta):
    """'4 min 10 s', '2 h 5 min', '1 d 3 h': short, plain."""
    seconds = round(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def exercises(request):
    """The exercises told in my scope, newest first, with their results in my scope."""
    now = timezone.now()
    listed = (
        permissions.trackable_bulletins(request.user)
        .filter(is_exercise=True)
        .select_related("issued_by")
        .order_by("-published_at", "-pk")
    )
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    figures = results(request.user, [bulletin.pk for bulletin in shown])
    answers = cannot_comply(request.user, [bulletin.pk for bulletin in shown])
    rows = []
    for bulletin in shown:
        row = figures.get(
            bulletin.pk,
            {"audience": 0, "answered": 0, "percent": 0, "reached": dict.fromkeys(MILESTONES)},
        )
        milestones = [
            {"share": share, "text": duration_text(row["reached"][share])
             if row["reached"][share] is not None else None}
            for share in MILESTONES
        ]  # fmt: skip
        answered = answers.get(bulletin.pk, {"answers": 0, "reasons": []})
        rows.append({"bulletin": bulletin, **row, "milestones": milestones,
                     "state": bulletin.state_at(now), "cannot_comply": answered})  # fmt: skip
    context = {"rows": rows, "page": page, "now": now, "milestones": MILESTONES}
    return render(request, "bulletins/exercises.html", context)

"""What the answers back (issue "Hearing back from the field") add to tracking: who answered
"I cannot comply", who reported an Order implemented and who was asked to, and the wrong tries
at the check of understanding.

A bulletin's figures read its answers first (few, indexed by bulletin), apart, and then the
recipient rows of those who answered through their (bulletin, user) key: never a scan of the
audience. `tracking.Coverage` adds them to its figures; the overview and the implemented status
board use them here.
"""

from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)

from bulletins import permissions
from bulletins.models import Bulletin, QuizAttempt, Recipient, Response
from bulletins.services.responses import CHAIN_ROLES
from portal.models import Unit

ImplementedFrom = Bulletin.ImplementedFrom


def answers_of(bulletin, kind):
    """The person's (OuterRef "user_id") answers of `kind` to `bulletin`: cannot-comply answers
    to any version; implemented reports of the current material version or later."""
    answers = Response.objects.filter(bulletin_id=bulletin.pk, user_id=OuterRef("user_id"))
    if kind == Response.Kind.IMPLEMENTED:
        return answers.filter(kind=kind, version__number__gte=bulletin.ack_version)
    return answers.filter(kind=kind)


def answer_tally(bulletin, recipients):
    """The people who answered an Order besides acknowledging it, by unit: [(unit_id,
    acknowledged, an open cannot-comply answer, any cannot-comply answer, reported implemented,
    people)]. One small GROUP BY over the recipient rows of those who answered (found through
    the bulletin's responses by their (bulletin, user) key), never a scan of the audience."""
    answered = _people(Response.objects.filter(bulletin_id=bulletin.pk))
    if not answered:
        return []
    cannot = answers_of(bulletin, Response.Kind.CANNOT_COMPLY)
    current = When(acknowledged_version__gte=bulletin.ack_version, then=Value(True))
    return list(
        recipients.order_by()
        .filter(user_id__in=answered)
        .annotate(
            is_current=Case(current, default=Value(False), output_field=BooleanField()),
            has_open=Exists(cannot.filter(resolved_at__isnull=True)),
            has_cannot=Exists(cannot),
            reported=Exists(answers_of(bulletin, Response.Kind.IMPLEMENTED)),
        )
        .values("unit_id", "is_current", "has_open", "has_cannot", "reported")
        .annotate(people=Count("pk"))
        .values_list("unit_id", "is_current", "has_open", "has_cannot", "reported", "people")
    )


def reporters_by_unit(recipients):
    """{unit_id: how many of `recipients` are supervisors or admins}: who may report an order
    implemented for "supervisors" and for "units" (`responses.must_report_implemented`)."""
    rows = recipients.order_by().filter(user__role__in=CHAIN_ROLES).values("unit_id")
    return dict(rows.annotate(people=Count("pk")).values_list("unit_id", "people"))


def quiz_figures(bulletin, recipients):
    """Wrong tries at the check of understanding of the current material version (or later)
    by `recipients`: {"wrong": tries, "people": how many people they were}. The wrong tries
    are read first, then which of those who made them are among `recipients`."""
    wrong = QuizAttempt.objects.filter(
        bulletin_id=bulletin.pk, passed=False, version__number__gte=bulletin.ack_version
    )
    tries = dict(
        wrong.order_by().values("user_id").annotate(n=Count("pk")).values_list("user_id", "n")
    )
    counted = _people(recipients.filter(user_id__in=list(tries))) if tries else []
    return {"wrong": sum(tries[pk] for pk in counted), "people": len(counted)}


def _people(rows):
    """The distinct people (user ids) of `rows`, read as a list: what a figure then looks up by
    the (bulletin, user) key. Read first, apart, because the planner would otherwise start
    from the recipients of a bulletin published since the statistics were taken, which it
    estimates at one row, and compare each person told with every answer."""
    return list(rows.order_by().values_list("user_id", flat=True).distinct())


def cannot_comply_by_bulletin(user, bulletins):
    """{bulletin id: {"open": its open cannot-comply answers, "people": how many answered
    "cannot comply" and have not acknowledged}} over the people told within the scope of
    `user` (`permissions.recipients_in_scope`): one query over the answers, for the overview."""
    told = permissions.recipients_in_scope(
        user,
        Recipient.objects.filter(bulletin_id=OuterRef("bulletin_id"), user_id=OuterRef("user_id")),
    )
    pending = told.filter(
        Q(acknowledged_version__isnull=True)
        | Q(acknowledged_version__lt=OuterRef("bulletin__ack_version"))
    )
    rows = (
        Response.objects.filter(bulletin__in=bulletins, kind=Response.Kind.CANNOT_COMPLY)
        .filter(Exists(told))
        .order_by()
        .values("bulletin_id")
        .annotate(
            open=Count("pk", filter=Q(resolved_at__isnull=True)),
            people=Count("user_id", distinct=True, filter=Exists(pending)),
        )
    )
    return {row["bulletin_id"]: row for row in rows}


# The implemented status board: who must report an Order implemented, and who has.


def reports(bulletin):
    """The implemented reports that count: of the current material version or later."""
    return Response.objects.filter(
        bulletin_id=bulletin.pk,
        kind=Response.Kind.IMPLEMENTED,
        version__number__gte=bulletin.ack_version,
    )


def reporters(bulletin, recipients, *, reported=None):
    """The recipient rows of the people asked to report (everyone told, or the supervisors);
    `reported` True / False keeps those who have / have not."""
    rows = recipients
    if bulletin.implemented_from != ImplementedFrom.EVERYONE:
        rows = rows.filter(user__role__in=CHAIN_ROLES)
    if reported is not None:
        has_report = Exists(answers_of(bulletin, Response.Kind.IMPLEMENTED))
        rows = rows.filter(has_report if reported else ~has_report)
    return rows


def add_reports(bulletin, recipients):
    """Sets `report` (their first report that counts, or None) on each of a page of recipient
    rows, in one query."""
    first = {}
    for report in reports(bulletin).filter(user_id__in=[row.user_id for row in recipients]):
        first.setdefault(report.user_id, report)  # ordered by time
    for row in recipients:
        row.report = first.get(row.user_id)


def unit_reports(bulletin, recipients):
    """For "one report per unit": each unit where a supervisor was told (in `recipients`), in
    tree order, with the reports made by the people told in it: [{"unit", "reports": [...]}]."""
    asked = reporters_by_unit(recipients)
    told_in = recipients.filter(user_id=OuterRef("user_id")).values("unit_id")[:1]
    made = (
        reports(bulletin)
        .annotate(told_unit=Subquery(told_in))
        .filter(told_unit__in=list(asked))
        .select_related("user")
    )
    by_unit = {}
    for report in made:
        by_unit.setdefault(report.told_unit, []).append(report)
    units = Unit.objects.filter(pk__in=asked).order_by("path")
    return [{"unit": unit, "reports": by_unit.get(unit.pk, [])} for unit in units]

"""Coverage dashboards, chasing and evidence exports (views)."""

from http import HTTPStatus

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from bulletins import conflicts, coverage, evidence, permissions, response_views
from bulletins.forms import OutstandingFilterForm
from bulletins.models import Recipient
from bulletins.services import answers_tracking, chasing, tracking
from portal import audit
from portal.sessions import require_recent_sign_in
from portal.spreadsheets import csv_lines

REFRESH_SECONDS = 30
PAGE_SIZE = 50


def _trackable_or_404(user, pk):
    return get_object_or_404(
        permissions.trackable_bulletins(user).select_related("issued_by"), pk=pk
    )


def _scoped_recipients(user, bulletin):
    return permissions.bulletin_recipients_in_scope(user, bulletin)


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def coverage_overview(request):
    """Every bulletin in force in my scope with its coverage: those with open "cannot comply"
    answers first (most first), then Orders by how many acknowledged, most urgent and least
    covered first; bulletins that ask only to be read (Advisory, Information, Intelligence) by
    how many opened them, after the Orders of their priority and out of the acknowledgement
    ordering."""
    now = timezone.now()
    # Exercises live apart: their results are on the Exercises page, never in these figures.
    bulletins = list(
        permissions.trackable_bulletins(request.user).in_force(now).filter(is_exercise=False)
    )
    told = permissions.recipients_in_scope(
        request.user, Recipient.objects.filter(bulletin__in=bulletins)
    )
    figures = {
        row["bulletin_id"]: row
        for row in told.values("bulletin_id").annotate(
            audience=Count("pk"),
            acknowledged=Count(
                "pk", filter=Q(acknowledged_version__gte=F("bulletin__ack_version"))
            ),
            opened=Count("pk", filter=Q(first_opened_at__isnull=False)),
        )
    }
    answers = answers_tracking.cannot_comply_by_bulletin(request.user, bulletins)
    rows = []
    for bulletin in bulletins:
        counts = figures.get(bulletin.pk, {"audience": 0, "acknowledged": 0, "opened": 0})
        answered = answers.get(bulletin.pk, {"open": 0, "people": 0})
        asked = bulletin.requires_acknowledgement
        done = counts["acknowledged"] if asked else counts["opened"]
        share = done / counts["audience"] if counts["audience"] else 1
        outstanding = counts["audience"] - counts["acknowledged"] - answered["people"]
        rows.append({"bulletin": bulletin, **counts, "percent": round(100 * share),
                     "asks_acknowledgement": asked, "cannot_comply": answered["open"],
                     "outstanding": outstanding if asked else None,
                     "not_opened": counts["audience"] - counts["opened"]})  # fmt: skip
    rows.sort(
        key=lambda row: (
            -row["cannot_comply"],  # open "cannot comply" answers first: a safety failure
            row["bulletin"].priority,
            not row["asks_acknowledgement"],  # read-only: after the Orders, never "least covered"
            row["percent"] if row["asks_acknowledgement"] else 0,
            -row["bulletin"].pk,
        )
    )
    context = {"rows": rows, "now": now, "refresh_seconds": REFRESH_SECONDS}
    if not request.htmx:  # the pairs do not refresh: they change only on publication
        context["topic_pairs"] = conflicts.topic_pairs(request.user, now)
    template = "bulletins/_overview_rows.html" if request.htmx else "bulletins/overview.html"
    return render(request, template, context)


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def bulletin_coverage(request, pk):
    """One bulletin's figures, from one GROUP BY over its recipients, kept and computed again
    by the workers while someone watches (`coverage_cache`); they refresh on their own every
    30 s (htmx). Who is outstanding is one tap away (`bulletin_outstanding`)."""
    now = timezone.now()
    bulletin = _trackable_or_404(request.user, pk)
    figures = coverage.figures(bulletin, request.user, now)
    on_leave = 0
    if figures["outstanding"]:
        recipients = _scoped_recipients(request.user, bulletin)
        on_leave = tracking.outstanding_on_leave(bulletin, recipients)
    html = coverage.fill_on_leave(figures["html"], on_leave)
    if request.htmx and request.htmx.target == "coverage-figures":
        return HttpResponse(html)
    context = {
        "bulletin": bulletin,
        "now": now,
        "state": bulletin.state_at(now),
        "figures_html": html,
        "outstanding": figures["outstanding"],
        "refresh_seconds": REFRESH_SECONDS,
    }
    if figures.get("cannot_comply", 1):  # none in the figures shown: no list to look up
        context |= response_views.coverage_context(request.user, bulletin)
    else:
        context |= {"cannot_comply": [], "cannot_comply_counts": {"total": 0, "open": 0}}
    return render(request, "bulletins/coverage.html", context | _chase_context(request, bulletin))


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def bulletin_outstanding(request, pk):
    """The people in my scope who have not acknowledged the current version: filtered by unit
    or by whether they opened it, sorted, 50 a page, with what was done to chase them."""
    now = timezone.now()
    bulletin = _trackable_or_404(request.user, pk)
    recipients = _scoped_recipients(request.user, bulletin)
    form = OutstandingFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    sort = filters.get("sort") or "unit"
    outstanding = tracking.outstanding_people(
        bulletin,
        recipients,
        sort=sort,
        unit=filters.get("unit"),
        opened={"yes": True, "no": False}.get(filters.get("opened") or ""),
    )
    if sort == "unit":  # the default: sort only the units on the page
        outstanding = tracking.ByUnit(outstanding)
    page = Paginator(outstanding, PAGE_SIZE).get_page(request.GET.get("page"))
    tracking.count_reminders(bulletin, page.object_list)
    tracking.mark_off_duty(bulletin, page.object_list, now)
    context = {
        "bulletin": bulletin,
        "now": now,
        "state": bulletin.state_at(now),
        "form": form,
        "page": page,
    }
    return render(
        request, "bulletins/outstanding.html", context | _chase_context(request, bulletin)
    )


def _chase_context(request, bulletin):
    """What `_chase_actions.html` shows on both pages: the reminder button and the last one
    sent to the people of my scope. Whoever may see the page may remind (`can_remind`: the
    bulletin came through `trackable_bulletins`), if it is an Order."""
    return {
        "can_remind": bulletin.requires_acknowledgement,
        "last_reminder": chasing.last_manual_reminder(bulletin, request.user),
    }


@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def bulletin_remind(request, pk):
    """One click, a confirmation, then a reminder to everyone outstanding in my scope: anyone
    who may follow the bulletin's coverage, at most once per 15 minutes per scope (the page says
    so, and when the next one may go, before anything is sent)."""
    now = timezone.now()
    bulletin = _trackable_or_404(request.user, pk)
    if not bulletin.requires_acknowledgement:
        raise Http404
    if request.method == "POST":
        try:
            count = chasing.send_manual_reminder(bulletin, by=request.user, now=now)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Reminder sent to {count} people.")
        return redirect("bulletins:coverage", pk=bulletin.pk)
    outstanding = chasing.chased(now).filter(bulletin=bulletin)
    count = permissions.recipients_in_scope(request.user, outstanding).count()
    context = {
        "bulletin": bulletin,
        "count": count,
        "next_at": chasing.next_manual_reminder_at(bulletin, request.user, now),
        "interval_minutes": round(chasing.MANUAL_REMINDER_INTERVAL.total_seconds() / 60),
    }
    return render(request, "bulletins/remind_confirm.html", context)


@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def recipients_csv(request, pk):
    """Streamed: 36,000 rows start downloading at once. Needs a sign-in within 5 minutes. Names,
    badges and unit names are neutralised: no cell runs as a spreadsheet formula."""
    bulletin = _trackable_or_404(request.user, pk)
    require_recent_sign_in(request)
    recipients = _scoped_recipients(request.user, bulletin)
    audit.record("export.recipients_csv", by=request.user, obj=bulletin,
                 version=bulletin.version, request=request)  # fmt: skip
    rows = csv_lines(evidence.recipient_rows(bulletin, recipients))
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    name = f"{'exercise' if bulletin.is_exercise else 'bulletin'}-{bulletin.pk}-recipients.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def evidence_record(request, pk, user_pk):
    """What one person was shown and did about one bulletin: printable, or signed JSON.
    Needs a sign-in within 5 minutes."""
    bulletin = _trackable_or_404(request.user, pk)
    recipient = get_object_or_404(
        _scoped_recipients(request.user, bulletin).select_related("user", "unit"), user_id=user_pk
    )
    require_recent_sign_in(request)
    record = evidence.build_record(bulletin, recipient)
    as_json = request.GET.get("format") == "json"
    audit.record(
        "export.evidence",
        by=request.user,
        obj=bulletin,
        version=bulletin.version,
        request=request,
        person=recipient.user_id,
        format="json" if as_json else "page",
    )
    if as_json:
        response = JsonResponse(evidence.sign(record), json_dumps_params={"indent": 2})
        name = f"evidence-bulletin-{bulletin.pk}-person-{recipient.user_id}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "private, no-store"
        return response
    return render(request, "bulletins/evidence.html",
                  {"record": record, "bulletin": bulletin, "recipient": recipient},
                  status=HTTPStatus.OK)  # fmt: skip

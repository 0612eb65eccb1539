"""The roll call on paper: the printed sheet (the orders and the tour's roster with a column to
sign in) and, after the roll call, the signatures on it recorded by the sergeant.

Both pages have the sergeant's screen's access: the sergeant who started the roll call, a
supervisor whose scope covers its unit, an admin of its agency; anyone else gets a 404."""

from http import HTTPStatus

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from bulletins import permissions
from bulletins.models import RollCallBriefing, RollCallPerson
from bulletins.services import roll_call_paper
from bulletins.services.roll_call import orders_to_brief, titled
from portal.decorators import recent_sign_in_required
from portal.local_time import zone_name
from portal.models import Unit

PAPERS = {"a4": "A4", "letter": "Letter"}


def _roll_call_or_404(user, pk):
    """As the sergeant's screen (`roll_call_views`): `permissions.roll_calls_for`, else 404."""
    queryset = permissions.roll_calls_for(user).select_related("unit", "tour", "sergeant")
    return get_object_or_404(queryset, pk=pk)


def _sheet_orders(roll_call, now):
    """The orders on the sheet: the versions briefed once the roll call is finished, else the
    orders to brief now, each as the version to read out."""
    if roll_call.finished_at is not None:
        briefings = (
            RollCallBriefing.objects.filter(roll_call=roll_call)
            .select_related("bulletin", "version")
            .order_by("bulletin__priority", "-bulletin__effective_at", "-bulletin_id")
        )
        pairs = [(briefing.bulletin, briefing.version) for briefing in briefings]
    else:
        pairs = [(order, order.current_version) for order in orders_to_brief(roll_call, now)]
    return [
        {
            "bulletin": bulletin,
            "version": version,
            "in_force_since": max(filter(None, [bulletin.effective_at, version.created_at])),
        }
        for bulletin, version in pairs
    ]


@never_cache
@require_GET
def roll_call_print(request, pk):
    """The roll-call sheet to print (Letter or A4, `?paper=`): the agency, unit, tour and date,
    the orders (title, instructions, version, in force since) and the roster to sign."""
    now = timezone.now()
    roll_call = _roll_call_or_404(request.user, pk)
    paper = request.GET.get("paper", "")
    paper = paper if paper in PAPERS else ""
    roster = (
        RollCallPerson.objects.filter(roll_call=roll_call)
        .select_related("user")
        .order_by("user__name", "pk")
    )
    context = {
        "roll_call": roll_call,
        "agency": Unit.objects.filter(path=roll_call.unit.agency_path).first(),
        "sergeant": titled(roll_call.sergeant),
        "orders": _sheet_orders(roll_call, now),
        "roster": roster,
        "paper": paper,
        "papers": PAPERS,
        "zone": zone_name(),
        "now": now,
    }
    return render(request, "bulletins/roll_call_print.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@recent_sign_in_required(allow_get=True)
def roll_call_paper_page(request, pk):
    """After the roll call: tick who signed the printed sheet (present, not co-signed on a
    phone, not recorded before); each gets a receipt per order briefed, recorded by you."""
    roll_call = _roll_call_or_404(request.user, pk)
    errors = []
    if request.method == "POST":
        try:
            result = roll_call_paper.record_paper_signatures(
                roll_call, person_ids=_ids(request.POST.getlist("person")), by=request.user,
                now=timezone.now(), request=request,
            )  # fmt: skip
        except ValidationError as error:
            errors = error.messages
        else:
            _say_done(request, result)
            return redirect("bulletins:roll_call_paper", pk=roll_call.pk)
    context = {
        "roll_call": roll_call,
        "candidates": roll_call_paper.paper_candidates(roll_call),
        "recorded": roll_call_paper.paper_recorded(roll_call),
        "briefings": roll_call.briefings.select_related("version").order_by("briefed_at", "pk"),
        "errors": errors,
        "zone": zone_name(),
    }
    status = HTTPStatus.UNPROCESSABLE_ENTITY if errors else HTTPStatus.OK
    return render(request, "bulletins/roll_call_paper.html", context, status=status)


def _ids(values):
    """The person ids posted; anything that is not a number is nobody (refused as such)."""
    return [int(value) for value in values if value.isdigit() and len(value) < 12]


def _say_done(request, result):
    people = len(result.people)
    said = f"Recorded {people} {'person' if people == 1 else 'people'} as signed on paper"
    said += f": {result.receipts} acknowledgement{'s' if result.receipts != 1 else ''}."
    if result.skipped:
        said += f" {result.skipped} left as they were (acknowledged already, or not theirs)."
    messages.success(request, said)
    for refusal in result.refused:
        messages.warning(request, refusal)

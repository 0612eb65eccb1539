"""The implemented status board of an Order that asks for "Implemented" reports (view).

By unit, each required reporter, reported or not, when and with what note, over the people
told within the viewer's scope (as the coverage page): for "one report per unit" each unit where
a supervisor was told; for "supervisors only" each supervisor; for "everyone" the counts by unit
and everyone, 50 a page. The figures by unit are the coverage page's (`tracking.Coverage`).
"""

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bulletins import permissions
from bulletins.models import Bulletin
from bulletins.services import answers_tracking, tracking
from portal.local_time import zone_name

PAGE_SIZE = 50
REPORTED = {"yes": True, "no": False}


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def implemented_board(request, pk):
    """Who in my scope was asked to report the order implemented, and who has. A 404 outside
    the bulletins I may track, and for one that asks for no report."""
    now = timezone.now()
    bulletin = get_object_or_404(
        permissions.trackable_bulletins(request.user)
        .filter(kind=Bulletin.Kind.ORDER)
        .exclude(implemented_from=Bulletin.ImplementedFrom.NOBODY),
        pk=pk,
    )
    recipients = permissions.bulletin_recipients_in_scope(request.user, bulletin)
    coverage = tracking.Coverage(bulletin, recipients)
    top, groups = tracking.group_breakdown(coverage.units())
    shown = request.GET.get("reported", "")
    context = {
        "bulletin": bulletin,
        "now": now,
        "state": bulletin.state_at(now),
        "summary": coverage.summary(on_leave=False),
        "top": top,
        "groups": groups,
        "shown": shown if shown in REPORTED else "",
        "zone": zone_name(),
    }
    if bulletin.implemented_from == Bulletin.ImplementedFrom.UNITS:
        context["units"] = answers_tracking.unit_reports(bulletin, recipients)
    else:
        rows = answers_tracking.reporters(bulletin, recipients, reported=REPORTED.get(shown))
        page = Paginator(tracking.ByUnit(rows), PAGE_SIZE).get_page(request.GET.get("page"))
        answers_tracking.add_reports(bulletin, page.object_list)
        context["page"] = page
    return render(request, "bulletins/implemented_board.html", context)

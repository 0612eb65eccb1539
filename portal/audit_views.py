"""Reading the audit trail: admins and auditors search it and export CSV; both are audited."""

import csv
import json

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal import audit
from portal.decorators import recent_sign_in_required
from portal.forms import AuditFilterForm
from portal.local_time import zone_name
from portal.scope import VIEW_AUDIT
from portal.spreadsheets import neutralise

PAGE_SIZE = 100
# seq, prev_hash and hash are blank for an event not sealed yet (at most a few seconds old).
CSV_COLUMNS = (
    "id", "at", "actor_label", "action", "object_type", "object_id", "object_version",
    "outcome", "ip", "user_agent", "request_id", "detail", "seq", "prev_hash", "hash",
)  # fmt: skip
# The page shows the agency's time; the export stays in UTC and its header says so.
CSV_HEADER = tuple("at_utc" if column == "at" else column for column in CSV_COLUMNS)


class Echo:
    def write(self, value):
        return value


@never_cache
@require_GET
@permission_required(VIEW_AUDIT, raise_exception=True)
def audit_events(request):
    form = AuditFilterForm(request.GET or None)
    events = form.filter(audit.visible_events(request.user))
    page = Paginator(events.order_by("-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    audit.record("audit.view", by=request.user, request=request, filters=form.used_filters())
    query = request.GET.copy()
    query.pop("page", None)
    zone = zone_name()
    context = {"form": form, "page": page, "query": query.urlencode(), "zone": zone}
    return render(request, "portal/auditevent_list.html", context)


@never_cache
@require_GET
@permission_required(VIEW_AUDIT, raise_exception=True)
@recent_sign_in_required
def audit_export(request):
    form = AuditFilterForm(request.GET or None)
    events = form.filter(audit.visible_events(request.user)).order_by("id")
    audit.record("audit.export", by=request.user, request=request, filters=form.used_filters())
    writer = csv.writer(Echo())
    rows = (writer.writerow(_row(event)) for event in events.iterator(chunk_size=2000))
    response = StreamingHttpResponse(
        _with_header(writer, rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


def _with_header(writer, rows):
    yield writer.writerow(CSV_HEADER)
    yield from rows


def _row(event):
    values = [getattr(event, column) for column in CSV_COLUMNS]
    values[CSV_COLUMNS.index("at")] = audit.to_utc_millisecond(event.at).isoformat(
        timespec="milliseconds"
    )
    values[CSV_COLUMNS.index("detail")] = json.dumps(event.detail, sort_keys=True)
    return [neutralise(value) for value in values]

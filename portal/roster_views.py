"""The roster pages an agency admin uses every day: Import roster (upload, preview of what will
change, confirm, result) and Units (the command tree of their scope with its people counted).

Both need MANAGE_PEOPLE (403 without it); an agency admin imports only within their agency, a
superuser anywhere. Uploading and confirming want a recent sign-in. Nothing is written before
"Confirm": the upload only previews, and the parsed roster waits in the session, signed, with
the changes and new units shown; confirming imports that roster provided it makes no change to
anyone's role, agency or email, and creates no unit, that was not shown (issue 19)."""

import io
import secrets
from pathlib import Path

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from portal import people, roster, roster_preview, roster_rows
from portal.models import Unit, User
from portal.scope import MANAGE_PEOPLE, scope_root, scope_units
from portal.sessions import require_recent_sign_in

PENDING_IMPORT = "portal_pending_roster_import"  # the session key of a roster awaiting "Confirm"
PENDING_IMPORT_SALT = "portal.roster_views.pending_roster_import"
PENDING_IMPORT_MAX_AGE = 60 * 60
IMPORT_RESULT = "portal_roster_import_result"
MAX_ROSTER_BYTES = 10 * 1024 * 1024  # 36,000 people take about 4 MB
ROSTER_SUFFIXES = (".csv", ".txt")
PREVIEW_ROWS = 200  # people listed in each part of a preview; the rest are counted
STALE_PREVIEW = "That preview is no longer current: nothing was changed. Upload the roster again."


class RosterUploadForm(forms.Form):
    roster = forms.FileField(
        label="Roster file (CSV)",
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
        help_text=f"Saved as CSV (UTF-8), at most {filesizeformat(MAX_ROSTER_BYTES)}.",
        error_messages={
            "required": "Choose the roster file to upload.",
            "empty": "The file is empty: choose the roster saved as CSV.",
            "invalid": "That is not a file: choose the roster saved as CSV.",
        },
    )
    create_units = forms.BooleanField(
        required=False,
        label="Create units that do not exist yet",
        help_text="Without this, a unit name that matches no unit is refused, with the nearest "
        "name suggested. With it, the units to create are listed for you to check first.",
    )
    send_invites = forms.BooleanField(
        required=False, label="Email each new person a link to set their password"
    )

    def clean_roster(self):
        upload = self.cleaned_data["roster"]
        if Path(upload.name).suffix.lower() not in ROSTER_SUFFIXES:
            raise forms.ValidationError(
                f"{upload.name} is not a CSV file: save the roster as CSV (comma-separated "
                "values) and choose that file."
            )
        if upload.size > MAX_ROSTER_BYTES:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}: a roster may be at most "
                f"{filesizeformat(MAX_ROSTER_BYTES)}. Split it into smaller files."
            )
        return upload

    def lines(self):
        """The file's text lines; RosterError when it is not UTF-8 text."""
        data = self.cleaned_data["roster"].read()
        try:
            if b"\x00" in data:
                raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL byte")
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = "the file is not text saved as UTF-8: save the roster as CSV (UTF-8)"
            raise roster.RosterError([roster.RowError(1, problem)]) from None
        return io.StringIO(text, newline="")


def _import_scope(request):
    """The agency an import is limited to (None for a superuser: anywhere)."""
    agency = scope_root(request.user)
    if agency is None and not request.user.is_superuser:
        raise PermissionDenied
    return agency


@never_cache
@require_http_methods(["GET", "POST"])
@permission_required(MANAGE_PEOPLE, raise_exception=True)
def people_import(request):
    """GET: the upload form (and the result of the import just made). POST a file: the preview
    of what it would change, nothing written. POST "pending": import what the preview showed."""
    agency = _import_scope(request)
    if request.method == "GET":
        request.session.pop(PENDING_IMPORT, None)  # leaving a preview cancels it
        result = request.session.pop(IMPORT_RESULT, None)
        return _upload_page(request, RosterUploadForm(), result=result)
    require_recent_sign_in(request)
    if "pending" in request.POST:
        return _confirm(request, agency)
    form = RosterUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_page(request, form)
    options = {
        "send_invites": form.cleaned_data["send_invites"],
        "create_units": form.cleaned_data["create_units"],
        "source": form.cleaned_data["roster"].name,
    }
    try:
        records = roster.read_csv(form.lines())
    except roster.RosterError as error:
        return _upload_page(request, form, errors=error.errors)
    return _preview(request, agency, records, options)


def _preview(request, agency, records, options, *, again=False):
    try:
        preview = roster_preview.preview_records(
            records, scope=agency, create_units=options["create_units"]
        )
    except roster.RosterError as error:
        request.session.pop(PENDING_IMPORT, None)
        return _upload_page(request, RosterUploadForm(initial=options), errors=error.errors)
    token = secrets.token_urlsafe(16)
    payload = {"records": records, "options": options}
    request.session[PENDING_IMPORT] = {
        "token": token,
        "payload": signing.dumps(payload, salt=PENDING_IMPORT_SALT, compress=True),
        "keys": preview.keys,
    }
    context = {
        "preview": preview,
        "changes": preview.changes,
        "pending": token,
        "options": options,
        "again": again,
        "new_people": preview.new_people[:PREVIEW_ROWS],
        "more_new": max(len(preview.new_people) - PREVIEW_ROWS, 0),
        "updated_people": preview.updated_people[:PREVIEW_ROWS],
        "more_updated": max(len(preview.updated_people) - PREVIEW_ROWS, 0),
    }
    return render(request, "people/import_preview.html", context)


def _confirm(request, agency):
    pending = request.session.get(PENDING_IMPORT) or {}
    if not pending or not secrets.compare_digest(pending["token"], request.POST["pending"]):
        messages.error(request, STALE_PREVIEW)
        return redirect("people_import")
    try:
        payload = signing.loads(
            pending["payload"], salt=PENDING_IMPORT_SALT, max_age=PENDING_IMPORT_MAX_AGE
        )
    except signing.BadSignature:
        request.session.pop(PENDING_IMPORT, None)
        messages.error(request, STALE_PREVIEW)
        return redirect("people_import")
    records, options = payload["records"], payload["options"]
    confirmed = [tuple(key) for key in pending["keys"]]
    try:
        summary = roster.import_records(
            records, by=request.user, request=request, scope=agency, confirmed=confirmed, **options
        )
    except roster.RosterError as error:
        request.session.pop(PENDING_IMPORT, None)
        return _upload_page(request, RosterUploadForm(initial=options), errors=error.errors)
    except roster.ConfirmationNeeded:
        return _preview(request, agency, records, options, again=True)
    request.session.pop(PENDING_IMPORT, None)
    request.session[IMPORT_RESULT] = {
        "source": options["source"],
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "new_units": summary.new_units,
        "invites": options["send_invites"] and summary.created,
    }
    return redirect("people_import")


def _upload_page(request, form, *, errors=(), result=None):
    context = {
        "form": form,
        "errors": errors,
        "result": result,
        "columns": roster_rows.COLUMNS,
        "separator": roster_rows.PATH_SEPARATOR,
    }
    return render(request, "people/import.html", context)


@never_cache
@require_GET
@permission_required(MANAGE_PEOPLE, raise_exception=True)
def people_units(request):
    """The command tree of my scope, each unit with its active people counted directly and with
    its sub-units: one query for the units, one for the counts."""
    units = list(
        scope_units(request.user).order_by("path").only("id", "path", "depth", "name", "kind")
    )
    direct = dict(
        people.manageable_people(request.user)
        .filter(is_active=True, unit__isnull=False)
        .values_list("unit_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    may_edit_tours = request.user.is_superuser or request.user.role == User.Role.ADMIN
    context = {"units": _counted_tree(units, direct), "may_edit_tours": may_edit_tours}
    return render(request, "people/units.html", context)


def _counted_tree(units, direct):
    """`units` (in path order) with `direct`, `total` (with sub-units), `below` (in sub-units)
    and `indent` (0 for the top of the scope, at most 4) set on each."""
    totals = {unit.path: direct.get(unit.pk, 0) for unit in units}
    for unit in reversed(units):  # a unit's descendants come after it in path order
        parent = unit.path[: -Unit.steplen]
        if parent in totals:
            totals[parent] += totals[unit.path]
    top = min((unit.depth for unit in units), default=1)
    for unit in units:
        unit.direct, unit.total = direct.get(unit.pk, 0), totals[unit.path]
        unit.below = unit.total - unit.direct
        unit.indent = min(unit.depth - top, 4)
    return units

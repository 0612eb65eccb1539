"""The Agency lists page: an agency's admins keep the default statement the reader signs, the
reasons an officer may give for "I cannot comply" and the topics of orders
(`bulletins.services.agency_lists`). A superuser picks the agency (`?agency=`; the first one
otherwise)."""

from http import HTTPStatus

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from bulletins.models import AgencyPolicy, CannotComplyReason, Topic
from bulletins.services import agency_lists
from bulletins.services.reading import agency_statement
from portal.models import Unit
from portal.scope import MANAGE_PEOPLE, scope_root
from portal.validators import refuse_control_characters

MOVES = {"up": -1, "down": 1}


class StatementForm(forms.Form):
    statement = forms.CharField(
        max_length=AgencyPolicy._meta.get_field("statement").max_length,
        label="Default statement the reader signs",
        help_text="Pre-filled on every new bulletin (its author may change it there) and signed "
        "where a bulletin has none of its own.",
        validators=[refuse_control_characters],
    )


class NameForm(forms.Form):
    name = forms.CharField(
        max_length=min(
            CannotComplyReason._meta.get_field("label").max_length,
            Topic._meta.get_field("name").max_length,
        ),
        label="Name",
        validators=[refuse_control_characters],
    )


def _agency(request):
    """The agency whose lists `request.user` keeps: their own (403 for anyone but its admins);
    for a superuser the one picked, or the first."""
    user = request.user
    if not user.has_perm(MANAGE_PEOPLE):
        raise PermissionDenied
    if not user.is_superuser:
        agency = scope_root(user)
        if agency is None or not agency_lists.can_keep_lists(user, agency):
            raise PermissionDenied
        return agency
    roots = Unit.objects.get_root_nodes()
    chosen = request.POST.get("agency") or request.GET.get("agency") or ""
    agency = roots.filter(pk=chosen).first() if chosen.isdigit() else roots.first()
    if agency is None:
        raise Http404
    return agency


def _name_form(kept, pk, **kwargs):
    return NameForm(auto_id=f"id_{kept.key}_{pk}_%s", **kwargs)


@never_cache
@require_http_methods(["GET", "POST"])
def agency_lists_page(request):
    agency = _agency(request)
    failed = None  # (where, bound form with errors)
    if request.method == "POST":
        outcome = _act(request, agency)
        if outcome is None:
            return redirect(_page_url(request, agency))
        if not isinstance(outcome, tuple):
            return outcome
        failed = outcome
    context = _context(request, agency, failed)
    status = HTTPStatus.UNPROCESSABLE_ENTITY if failed else HTTPStatus.OK
    return render(request, "bulletins/agency_lists.html", context, status=status)


def _page_url(request, agency):
    url = reverse("bulletins:agency_lists")
    return f"{url}?agency={agency.pk}" if request.user.is_superuser else url


def _act(request, agency):
    """Do what the POST asks: None when done, (where, form) for a form with errors, or a
    response for a request no page sends."""
    data, by, now = request.POST, request.user, timezone.now()
    action = data.get("action")
    if action == "statement":
        form = StatementForm(data)
        if not _done(form, lambda: agency_lists.set_statement(
            agency, by=by, now=now, statement=form.cleaned_data["statement"]
        )):  # fmt: skip
            return ("statement", form)
        messages.success(request, "Default statement saved. New bulletins start with it.")
        return None
    kept = agency_lists.LISTS.get(data.get("list", ""))
    if kept is None:
        return HttpResponseBadRequest("Unknown list.")
    if action == "add":
        form = _name_form(kept, "new", data=data)
        if not _done(form, lambda: agency_lists.add_item(
            kept, agency, by=by, now=now, name=form.cleaned_data["name"]
        )):  # fmt: skip
            return ((kept.key, "new"), form)
        messages.success(request, f"{form.cleaned_data['name'].strip()} added.")
        return None
    pk = data.get("pk", "")
    item = get_object_or_404(kept.of(agency), pk=pk) if pk.isdigit() else None
    if item is None:
        return HttpResponseBadRequest("Choose a row of the list.")
    return _act_on_item(request, kept, item, action)


def _act_on_item(request, kept, item, action):
    by, now, text = request.user, timezone.now(), kept.text(item)
    if action == "rename":
        form = _name_form(kept, item.pk, data=request.POST)
        if not _done(form, lambda: agency_lists.rename_item(
            kept, item, by=by, now=now, name=form.cleaned_data["name"]
        )):  # fmt: skip
            return ((kept.key, item.pk), form)
        messages.success(request, f"{text} renamed {form.cleaned_data['name'].strip()}.")
    elif action in MOVES:
        agency_lists.move_item(kept, item, by=by, now=now, step=MOVES[action])
        messages.success(request, f"{text} moved {action}.")
    elif action in ("archive", "restore"):
        archived = action == "archive"
        agency_lists.set_archived(kept, item, by=by, now=now, archived=archived)
        messages.success(
            request, f"{text} archived: no longer offered." if archived else f"{text} restored."
        )
    else:
        return HttpResponseBadRequest("Unknown action.")
    return None


def _done(form, change):
    """Validate `form` and make the change; False (with the errors on the form) if refused."""
    if not form.is_valid():
        return False
    try:
        change()
    except ValidationError as error:
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return False
    return True


def _context(request, agency, failed):
    where, bound = failed or (None, None)
    statement_form = bound if where == "statement" else StatementForm(
        initial={"statement": agency_statement(agency.pk)}
    )  # fmt: skip
    lists = []
    for kept, heading, hint in (
        (agency_lists.REASONS, "Reasons for \"I cannot comply\"",
         "What an officer chooses from when they cannot comply with an order, in this order."),
        (agency_lists.TOPICS, "Topics",
         "What orders are about. Orders on one topic from different levels of command are "
         "compared, so a lower command's order cannot quietly relax a higher one's."),
    ):  # fmt: skip
        rows = []
        for item in kept.of(agency):
            key = (kept.key, item.pk)
            form = bound if where == key else _name_form(
                kept, item.pk, initial={"name": kept.text(item)}
            )  # fmt: skip
            rows.append({"item": item, "text": kept.text(item), "form": form})
        add_form = bound if where == (kept.key, "new") else _name_form(kept, "new")
        offered = [row for row in rows if not row["item"].is_archived]
        archived = [row for row in rows if row["item"].is_archived]
        lists.append({"kept": kept, "heading": heading, "hint": hint, "offered": offered,
                      "archived": archived, "add_form": add_form})  # fmt: skip
    return {
        "agency": agency,
        "agencies": list(Unit.objects.get_root_nodes()) if request.user.is_superuser else [],
        "statement_form": statement_form,
        "lists": lists,
    }

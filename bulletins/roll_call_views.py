"""Roll call pages: the supervisor starts and finishes a roll call (`/roll-call/`,
`/roll-call/<pk>/`), everyone types the roll-call code and co-signs the orders briefed.

Typing codes is capped per person like signing in (`portal.lockout`): after
ROLL_CALL_CODE_FAILURE_LIMIT refused codes within LOCKOUT_WINDOW_MINUTES, no code is checked for
that person until the window has passed.
"""

from http import HTTPStatus

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from bulletins import permissions
from bulletins.models import RollCallBriefing, RollCallPerson
from bulletins.services import roll_call as service
from portal import audit, tours
from portal.decorators import rate_limited
from portal.local_time import zone_name
from portal.scope import scope_units

RECENT = 10
LOCKED = (
    "Too many wrong roll-call codes. Try again in {minutes} minutes, or open each order and "
    "acknowledge it there."
)


class StartForm(forms.Form):
    unit = forms.ModelChoiceField(queryset=None, empty_label=None)
    tour = forms.ChoiceField(choices=())

    def __init__(self, *args, user, now, **kwargs):
        super().__init__(*args, **kwargs)
        units = scope_units(user).order_by("path")
        self.fields["unit"].queryset = units
        default_unit = user.unit if user.unit_id and user.unit in units else units.first()
        # Every tour name of the units offered (the agency's, and those of a unit with its
        # own), the default unit's first; the unit chosen must have the tour picked (`clean`).
        names, book = {}, tours.TourBook()  # the agency's tours read once
        for unit in [default_unit, *units] if default_unit else []:
            for tour in book.tours_for(unit, agency_id=user.agency_id):
                names.setdefault(tour.name, None)
        self.fields["tour"].choices = [(name, name) for name in names]
        nearest = tours.nearest_tour_start(default_unit, now) if default_unit else None
        self.initial = {"unit": default_unit, "tour": nearest[0].name if nearest else None}
        self.nearest = nearest

    def clean(self):
        data = super().clean()
        unit, name = data.get("unit"), data.get("tour")
        if unit is not None and name:
            data["tour"] = tours.find_tour(unit, name)
            if data["tour"] is None:
                self.add_error("tour", f"{unit.name} has no {name} tour.")
        return data


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Roll-call code",
        max_length=20,
        help_text="6 letters and digits, shown on your sergeant's screen.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )


def _index(request, *, code_form=None, start_form=None, status=HTTPStatus.OK):
    user, now = request.user, timezone.now()
    can_start = user.has_perm(permissions.AUTHOR) and scope_units(user).exists()
    recent = permissions.roll_calls_for(user).select_related("unit", "sergeant")[:RECENT]
    context = {
        "code_form": code_form or CodeForm(),
        "start_form": (start_form or StartForm(user=user, now=now)) if can_start else None,
        "recent": list(recent) if can_start else [],
        "zone": zone_name(),
        "now": now,
    }
    return render(request, "bulletins/roll_call.html", context, status=status)


@never_cache
@require_GET
def roll_call(request):
    return _index(request)


@require_POST
def roll_call_start(request):
    if not request.user.has_perm(permissions.AUTHOR):
        raise PermissionDenied
    now = timezone.now()
    form = StartForm(request.POST, user=request.user, now=now)
    if form.is_valid():
        data = form.cleaned_data
        try:
            started = service.start_roll_call(
                unit=data["unit"], tour=data["tour"], by=request.user, now=now
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("bulletins:roll_call_detail", pk=started.pk)
    return _index(request, start_form=form, status=HTTPStatus.UNPROCESSABLE_ENTITY)


def _roll_call_or_404(user, pk):
    queryset = permissions.roll_calls_for(user).select_related("unit", "sergeant")
    return get_object_or_404(queryset, pk=pk)


def _detail(request, roll_call, *, error=None, ticked=None, status=HTTPStatus.OK):
    now = timezone.now()
    people = list(
        RollCallPerson.objects.filter(roll_call=roll_call)
        .select_related("user")
        .order_by("user__name", "user_id")
    )
    finished = roll_call.finished_at is not None
    present, briefed = ticked or ({p.user_id for p in people if p.present}, set())
    context = {
        "roll_call": roll_call,
        "people": people,
        "present_ids": present,
        "briefed_ids": briefed,
        "error": error,
        "zone": zone_name(),
        "now": now,
        "finished": finished,
        "orders": [] if finished else service.orders_to_brief(roll_call, now),
        "briefings": list(
            RollCallBriefing.objects.filter(roll_call=roll_call)
            .select_related("bulletin", "version")
            .order_by("bulletin__priority", "-bulletin__effective_at", "-bulletin_id")
        )
        if finished
        else [],
        "code_valid": finished and roll_call.code_expires_at > now,
        "co_signed": [p for p in people if p.co_signed_at],
        "present_people": [p for p in people if p.present],
    }
    return render(request, "bulletins/roll_call_detail.html", context, status=status)


@never_cache
@require_GET
def roll_call_detail(request, pk):
    return _detail(request, _roll_call_or_404(request.user, pk))


def _ids(request, name):
    try:
        return {int(value) for value in request.POST.getlist(name)}
    except ValueError:
        return None


@require_POST
def roll_call_finish(request, pk):
    """ "Update the counts" (who is present so far) or "Finish roll call"."""
    roll_call = _roll_call_or_404(request.user, pk)
    now = timezone.now()
    present, briefed = _ids(request, "present"), _ids(request, "briefed")
    if present is None or briefed is None:
        return _detail(request, roll_call, error="Something ticked is not on this roll call.",
                       status=HTTPStatus.UNPROCESSABLE_ENTITY)  # fmt: skip
    if roll_call.finished_at is not None:
        messages.info(request, "This roll call is finished already: nothing was changed.")
        return redirect("bulletins:roll_call_detail", pk=roll_call.pk)
    try:
        if request.POST.get("action") == "count":
            service.mark_present(roll_call, present_ids=present, by=request.user, now=now)
            messages.success(request, "Present people saved. The counts below are theirs.")
        else:
            service.finish_roll_call(
                roll_call, present_ids=present, briefed_version_ids=briefed, by=request.user,
                now=now,
            )  # fmt: skip
            messages.success(
                request, "Roll call recorded. Show the roll-call code to those present."
            )
    except ValidationError as error:
        message = " ".join(error.messages)
        return _detail(request, roll_call, error=message, ticked=(present, briefed),
                       status=HTTPStatus.UNPROCESSABLE_ENTITY)  # fmt: skip
    return redirect("bulletins:roll_call_detail", pk=roll_call.pk)


def _failures_key(user):
    return f"portal:roll-call-code-failures:{user.pk}"


def _is_locked(user):
    return (cache.get(_failures_key(user)) or 0) >= settings.ROLL_CALL_CODE_FAILURE_LIMIT


def _count_failure(request, error):
    key = _failures_key(request.user)
    cache.add(key, 0, timeout=settings.LOCKOUT_WINDOW_MINUTES * 60)
    failures = cache.incr(key)
    if failures == settings.ROLL_CALL_CODE_FAILURE_LIMIT:
        audit.record(
            "roll_call.code_locked", by=request.user, request=request, outcome="locked",
            failures=failures, last_refusal=getattr(error, "code", ""),
        )  # fmt: skip


def _refused(request, form, error):
    _count_failure(request, error)
    form.add_error("code", error)
    return _index(request, code_form=form, status=HTTPStatus.UNPROCESSABLE_ENTITY)


def _locked(request, form):
    form.add_error("code", LOCKED.format(minutes=settings.LOCKOUT_WINDOW_MINUTES))
    return _index(request, code_form=form, status=HTTPStatus.TOO_MANY_REQUESTS)


def _checked_code(request):
    """The code form sent, and the page refusing it (bad input, too many wrong codes) or None."""
    form = CodeForm(request.POST)
    if not form.is_valid():
        return form, _index(request, code_form=form, status=HTTPStatus.UNPROCESSABLE_ENTITY)
    if _is_locked(request.user):
        return form, _locked(request, form)
    return form, None


@require_POST
@rate_limited("roll_call_code", setting="ACKNOWLEDGE_RATE_PER_MINUTE")
def roll_call_code(request):
    """The code typed: the orders briefed, to co-sign (nothing is written yet)."""
    form, refused = _checked_code(request)
    if refused is not None:
        return refused
    now = timezone.now()
    try:
        found = service.find_roll_call(form.cleaned_data["code"], request.user, now)
    except ValidationError as error:
        return _refused(request, form, error)
    context = {
        "roll_call": found,
        "code": found.code,
        "orders": service.briefed_orders(found, request.user, now),
        "statement": service.STATEMENT,
        "zone": zone_name(),
        "sergeant": service.titled(found.sergeant),
    }
    context["to_sign"] = [order for order in context["orders"] if order.state == "sign"]
    return render(request, "bulletins/roll_call_sign.html", context)


@require_POST
@rate_limited("acknowledge", setting="ACKNOWLEDGE_RATE_PER_MINUTE")
def roll_call_sign(request):
    """Acknowledge briefed orders: a roll-call receipt for each that can still take one."""
    form, refused = _checked_code(request)
    if refused is not None:
        return refused
    try:
        receipts = service.co_sign(
            form.cleaned_data["code"], person=request.user, now=timezone.now(), request=request
        )
    except ValidationError as error:
        return _refused(request, form, error)
    if receipts:
        titles = "; ".join(receipt.bulletin.title for receipt in receipts)
        count = len(receipts)
        messages.success(
            request, f"Acknowledged {count} briefed order{'s' if count != 1 else ''}: {titles}."
        )
    else:
        messages.info(request, "Co-signed. There was nothing left for you to acknowledge.")
    return redirect("bulletins:roll_call")

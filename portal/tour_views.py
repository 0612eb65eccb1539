"""The tours page of a unit: an admin sets the agency's default tours (on the agency's own
unit) or a unit's own tours, which then replace the ones it inherits. Admins only (403 without
MANAGE_PEOPLE or for a supervisor); a unit outside the admin's scope is not found (404). Each
save is audited with the tours before and after."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import ProtectedError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from portal import audit, local_time, tours
from portal.models import Tour, Unit, User
from portal.people_views import managing_people
from portal.scope import scope_units
from portal.sessions import require_recent_sign_in

EMPTY_ROWS = 2
MAX_TOURS = 12


class TimeField(forms.CharField):
    default_error_messages = {"invalid": "Enter a time as HH:MM, for example 07:00 or 23:00."}

    def __init__(self, **kwargs):
        super().__init__(widget=forms.TimeInput(attrs={"type": "time"}), **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        parsed = tours.parse_hhmm(value)
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class TourForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(label="Name", max_length=40, required=False)
    starts_at = TimeField(label="Starts (HH:MM)", required=False)
    ends_at = TimeField(label="Ends (HH:MM)", required=False)
    remove = forms.BooleanField(label="Remove this tour", required=False)

    def clean(self):
        data = super().clean()
        if data.get("remove") or not self.has_changed():
            return data
        filled = [data.get("name"), data.get("starts_at"), data.get("ends_at")]
        if any(value not in (None, "") for value in filled):
            needed = (("name", "a name"), ("starts_at", "a start"), ("ends_at", "an end"))
            for field, label in needed:
                if data.get(field) in (None, "") and field not in self.errors:
                    self.add_error(field, f"Give {label} for this tour.")
            if data.get("starts_at") and data.get("starts_at") == data.get("ends_at"):
                self.add_error("ends_at", "The tour must end at another time than it starts.")
        return data

    @property
    def is_kept(self):
        data = self.cleaned_data
        return not data.get("remove") and bool(data.get("name"))


class BaseTourFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        seen = {}
        for form in self.forms:
            if form.is_kept:
                name = form.cleaned_data["name"].strip().casefold()
                if name in seen:
                    form.add_error("name", "Another tour of this unit has this name already.")
                seen[name] = form


TourFormSet = forms.formset_factory(
    TourForm, formset=BaseTourFormSet, extra=EMPTY_ROWS, max_num=MAX_TOURS, validate_max=True
)


def _may_edit_tours(user):
    return user.is_superuser or user.role == User.Role.ADMIN


def _initial(unit):
    return [
        {
            "id": t.pk,
            "name": t.name,
            "starts_at": f"{t.starts_at:%H:%M}",
            "ends_at": f"{t.ends_at:%H:%M}",
        }  # fmt: skip
        for t in Tour.objects.filter(unit=unit).order_by("position", "starts_at")
    ]


def _describe(unit):
    return [str(tour) for tour in Tour.objects.filter(unit=unit).order_by("position", "starts_at")]


@transaction.atomic
def save_tours(unit, forms_kept, *, by, now, request=None):
    """Make `unit`'s own tours the `forms_kept` ones (updated in place by id, so a roll call of
    a renamed tour still points at it); audited. Raises ProtectedError for a removed tour that a
    roll call records."""
    before = _describe(unit)
    own = {tour.pk: tour for tour in Tour.objects.select_for_update().filter(unit=unit)}
    kept_ids = {form.cleaned_data.get("id") for form in forms_kept} - {None}
    Tour.objects.filter(unit=unit).exclude(pk__in=kept_ids).delete()
    # Names move between rows (swap): clear them first so the unique name never collides.
    for form in forms_kept:
        tour = own.get(form.cleaned_data.get("id"))
        if tour is not None:
            Tour.objects.filter(pk=tour.pk).update(name=f"~renaming {tour.pk}")
    for position, form in enumerate(forms_kept):
        data = form.cleaned_data
        tour = own.get(data.get("id")) or Tour(unit=unit)
        tour.name = data["name"].strip()
        tour.starts_at, tour.ends_at, tour.position = data["starts_at"], data["ends_at"], position
        tour.save()
    after = _describe(unit)
    tours.tours_changed(unit)
    if before != after:
        audit.record("unit.tours", by=by, obj=unit, now=now, request=request,
                     before=before, after=after)  # fmt: skip
    return before != after


@managing_people
def unit_tours(request, pk):
    """The tours of one unit of my scope: its own, or those it inherits, and a form to set its
    own (the agency's unit: the agency's default)."""
    if not _may_edit_tours(request.user):
        raise PermissionDenied
    unit = get_object_or_404(scope_units(request.user), pk=pk)
    formset = TourFormSet(request.POST or None, initial=_initial(unit), prefix="tours")
    if request.method == "POST":
        require_recent_sign_in(request)
        if formset.is_valid():
            kept = [form for form in formset.forms if form.is_kept]
            try:
                changed = save_tours(unit, kept, by=request.user, now=timezone.now(),
                                     request=request)  # fmt: skip
            except ProtectedError:
                messages.error(
                    request,
                    "Nothing was saved: a tour you removed is recorded by a roll call. "
                    "Rename it instead of removing it.",
                )
            else:
                messages.success(request, "Tours saved." if changed else "Nothing changed.")
                return redirect("unit_tours", pk=unit.pk)
    own = Tour.objects.filter(unit=unit).exists()
    inherited = [] if own else tours.tours_for(unit)
    source = None
    if inherited:
        source = Unit.objects.filter(pk=inherited[0].unit_id).first()
    context = {"unit": unit, "formset": formset, "inherited": inherited, "source": source,
               "is_agency": unit.is_root(), "zone_name": local_time.zone_name()}  # fmt: skip
    return render(request, "people/tours.html", context)

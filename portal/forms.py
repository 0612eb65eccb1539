import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from portal import people, tours
from portal.models import Unit, User
from portal.people import grantable_roles
from portal.scope import scope_units


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, help_text="e.g. auth.sign_in_failed, bulletin.")
    actor = forms.CharField(required=False, label="Actor email contains")
    object_type = forms.CharField(required=False, help_text="e.g. bulletins.bulletin")
    object_id = forms.CharField(required=False, label="Object id")
    outcome = forms.CharField(required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def filter(self, events):
        """`events` narrowed by the valid filters; an action ending in "." is a prefix."""
        data = self.cleaned_data if self.is_valid() else {}
        action = data.get("action", "").strip()
        if action:
            lookup = "action__startswith" if action.endswith(".") else "action"
            events = events.filter(**{lookup: action})
        exact = {
            "actor_label__icontains": data.get("actor", "").strip(),
            "object_type": data.get("object_type", "").strip(),
            "object_id": data.get("object_id", "").strip(),
            "outcome": data.get("outcome", "").strip(),
        }
        events = events.filter(**{lookup: value for lookup, value in exact.items() if value})
        if data.get("date_from"):
            events = events.filter(at__gte=_start_of(data["date_from"]))
        if data.get("date_to"):
            events = events.filter(at__lt=_start_of(data["date_to"] + dt.timedelta(days=1)))
        return events

    def used_filters(self):
        data = self.cleaned_data if self.is_valid() else {}
        return {name: str(value) for name, value in data.items() if value}


def _start_of(day):
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# The people pages (portal.people_views)


class UnitSelectField(forms.ModelChoiceField):
    """Units in tree order, each indented under its parent."""

    def label_from_instance(self, unit):
        return "\u2014 " * (unit.depth - 1) + unit.name


def _yes_no(any_label, yes, no):
    return [("", any_label), ("yes", yes), ("no", no)]


class PeopleFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Name, email or badge")
    unit = UnitSelectField(
        queryset=Unit.objects.none(),
        required=False,
        empty_label="All units",
        label="Unit (with the units under it)",
    )
    member_class = forms.ChoiceField(
        required=False, choices=[("", "All classes"), *User.MemberClass.choices], label="Class"
    )
    role = forms.ChoiceField(
        required=False, choices=[("", "All roles"), *User.Role.choices], label="Role"
    )
    on_leave = forms.ChoiceField(
        required=False, choices=_yes_no("On leave or not", "On leave", "Not on leave"),
        label="Leave",
    )  # fmt: skip
    locked = forms.ChoiceField(
        required=False, choices=_yes_no("Locked or not", "Locked", "Not locked"), label="Sign-in"
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Active"), ("deactivated", "Deactivated"), ("all", "Active or not")],
        label="Status",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].queryset = scope_units(user).order_by("path")

    def filter(self, people):
        """`people` (annotated with `is_locked`) narrowed by the filters that are valid; an
        invalid one shows its error and narrows nothing."""
        self.is_valid()  # unbound: no filter; bound: the fields that cleaned
        data = getattr(self, "cleaned_data", {})
        for word in data.get("q", "").split():
            people = people.filter(
                Q(name__icontains=word) | Q(email__icontains=word) | Q(badge__iexact=word)
            )
        if data.get("unit"):
            people = people.filter(unit__path__startswith=data["unit"].path)
        exact = {"member_class": data.get("member_class"), "role": data.get("role")}
        people = people.filter(**{name: value for name, value in exact.items() if value})
        flags = {"is_on_leave": data.get("on_leave"), "is_locked": data.get("locked")}
        people = people.filter(**{name: v == "yes" for name, v in flags.items() if v})
        status = data.get("status") or "active"
        if status != "all":
            people = people.filter(is_active=status == "active")
        return people


class PersonActionForm(forms.Form):
    """A confirmation with nothing to choose: put on leave, back from leave, unlock, deactivate."""

    error_field = None

    def __init__(self, *args, person, by, **kwargs):
        super().__init__(*args, **kwargs)
        self.person, self.by = person, by


class MovePersonForm(PersonActionForm):
    error_field = "unit"
    unit = UnitSelectField(queryset=Unit.objects.none(), label="Move to", empty_label=None)

    def __init__(self, *args, person, by, **kwargs):
        super().__init__(*args, person=person, by=by, **kwargs)
        self.fields["unit"].queryset = scope_units(by).order_by("path")
        self.fields["unit"].initial = person.unit_id


class ChangeRoleForm(PersonActionForm):
    error_field = "role"
    role = forms.ChoiceField(
        label="New role",
        error_messages={"invalid_choice": "You cannot give this role."},
        help_text="Officer: reads and acknowledges. Supervisor: also writes bulletins and "
        "follows coverage for their unit. Admin: all that for the whole agency, and manages "
        "people. Auditor: reads the audit trail only.",
    )

    def __init__(self, *args, person, by, **kwargs):
        super().__init__(*args, person=person, by=by, **kwargs)
        self.fields["role"].choices = [(role.value, role.label) for role in grantable_roles(by)]
        self.fields["role"].initial = person.role


class PersonFormMixin:
    """Lower-case, case-insensitively unique email; a badge unique in the unit's agency (the
    form's unit, or the person's own when the form has none). Shared by the Django admin and
    the portal's people pages."""

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        others = User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError("Another person already has this email address.")
        return email

    def clean(self):
        cleaned = super().clean()
        unit = cleaned.get("unit") if "unit" in self.fields else self.instance.unit
        badge = cleaned.get("badge")
        holder = people.badge_holder(badge, people.agency_of(unit), exclude=self.instance)
        if holder is not None:
            self.add_error("badge", f"Badge {badge} already belongs to {holder} in this agency.")
        return cleaned


DETAIL_FIELDS = ("name", "email", "badge", "rank", "member_class", "wants_email")


class PersonDetailsForm(PersonFormMixin, forms.ModelForm):
    """A person's details as an admin edits them; role, unit, leave and sign-in have actions
    of their own."""

    class Meta:
        model = User
        fields = (*DETAIL_FIELDS, "tour")
        labels = {"badge": "Badge number", "wants_email": "Email them non-urgent bulletins too"}
        help_texts = {"wants_email": "Urgent orders are always emailed."}

    def __init__(self, *args, by, **kwargs):
        super().__init__(*args, **kwargs)
        self.by = by
        self.fields["email"].widget.attrs["autocomplete"] = "off"
        if "tour" in self.fields:
            self.fields["tour"] = tour_field(self.instance)


def tour_field(person):
    """A select of the tours of the person's unit and "None" (their current tour kept as a
    choice even if the unit no longer has it)."""
    choices = tours.tour_choices(person.unit, agency_id=person.agency_id)
    if person.tour and person.tour not in [value for value, _label in choices]:
        choices.append((person.tour, f"{person.tour} (not a tour of the unit now)"))
    return forms.ChoiceField(
        label="Regular tour",
        choices=choices,
        required=False,
        help_text="Reminders wait for the start of their tour when they are off duty.",
        error_messages={"invalid_choice": "Choose one of the unit's tours, or None."},
    )


class AddPersonForm(PersonDetailsForm):
    role = forms.ChoiceField(
        label="Role",
        error_messages={"invalid_choice": "You cannot give this role."},
        help_text=ChangeRoleForm.base_fields["role"].help_text,
    )
    unit = UnitSelectField(
        queryset=Unit.objects.none(),
        label="Unit",
        empty_label="Choose a unit",
        error_messages={"invalid_choice": "Choose one of your units."},
    )
    send_link = forms.BooleanField(
        required=False,
        initial=True,
        label="Send a link to set a password",
        help_text="They get an email with a link that works for a day. You never see or type "
        "their password.",
    )

    class Meta(PersonDetailsForm.Meta):
        fields = ("name", "email", "badge", "rank", "member_class", "role", "unit", "wants_email")

    def __init__(self, *args, by, **kwargs):
        super().__init__(*args, by=by, **kwargs)
        self.fields["role"].choices = [(role.value, role.label) for role in grantable_roles(by)]
        self.fields["role"].initial = User.Role.OFFICER
        self.fields["unit"].queryset = scope_units(by).order_by("path")

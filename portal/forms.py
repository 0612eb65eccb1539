import datetime as dt

from django import forms
from django.utils import timezone


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

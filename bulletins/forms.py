from datetime import timedelta

import filetype
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from bulletins import conflicts, corrections, permissions, quiz
from bulletins.models import Attachment, Bulletin, TemplateVersion
from bulletins.services.authoring import SUPERSEDE_CHOICES, supersedable
from bulletins.services.reading import agency_statement
from portal.local_time import zone_name
from portal.models import Unit
from portal.scope import scope_root, scope_units
from portal.validators import (
    refuse_control_characters,
    refuse_control_characters_but_line_breaks,
)

ALLOWED_UPLOADS = {"application/pdf", "image/jpeg", "image/png"}


class UnitChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, unit):
        return unit.name


class SupersedeChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, bulletin):
        since = timezone.localtime(bulletin.effective_at)
        when = "in force since" if bulletin.status == Bulletin.Status.IN_FORCE else "takes effect"
        return f"{bulletin.title} ({when} {since:%a %d %b %H:%M})"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


def check_upload(upload):
    """PDF, JPEG or PNG, judged by content, at most 10 MB. Returns the content type."""
    if upload.size > Attachment.MAX_BYTES:
        raise ValidationError(f"{upload.name} is larger than 10 MB.")
    head = upload.read(2048)
    upload.seek(0)
    kind = filetype.guess(head)
    content_type = kind.mime if kind else None
    if content_type not in ALLOWED_UPLOADS:
        raise ValidationError(f"{upload.name} is not a PDF, JPEG or PNG file.")
    if content_type.startswith("image/"):
        try:
            Image.open(upload).verify()
        # Pillow reports malformed or oversized images with several exception types.
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            OSError,
            SyntaxError,
            ValueError,
        ) as error:
            raise ValidationError(f"{upload.name} is not a readable image.") from error
        finally:
            upload.seek(0)
    return content_type


BOTH_ENDS = "Give an end time or tick Until further notice, not both."


class TimeSpanMixin:
    """ "Ends at" or "Until further notice" (with a review interval)."""

    def clean_time_span(self, cleaned):
        if cleaned.get("until_further_notice") and cleaned.get("expires_at"):
            self.add_error("expires_at", BOTH_ENDS)
        elif cleaned.get("until_further_notice"):
            cleaned["expires_at"] = None
        elif not cleaned.get("expires_at") and "expires_at" not in self.errors:
            self.add_error("expires_at", "Give an end time, or tick Until further notice.")
        return cleaned


class BulletinForm(TimeSpanMixin, forms.ModelForm):
    # What the audience count (htmx, while writing) sends: never the text of the draft.
    AUDIENCE_FIELDS = (
        "units", "units_only", "to_sworn", "to_auxiliary", "to_civilian", "supervisors_only",
    )  # fmt: skip

    units = UnitChoiceField(
        queryset=Unit.objects.none(),
        required=False,
        label="Units (with all the units under them)",
    )
    units_only = UnitChoiceField(
        queryset=Unit.objects.none(),
        required=False,
        label="Units on their own (not the units under them)",
    )
    starts = forms.ChoiceField(
        choices=[("now", "Now, when I publish"), ("at", "At a set time")],
        widget=forms.RadioSelect,
        initial="now",
        label="Takes effect",
    )
    effective_at = forms.DateTimeField(
        required=False,
        label="Takes effect at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Ends at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until_further_notice = forms.BooleanField(required=False, label="Until further notice")
    review_hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 30,
        initial=72,
        label="Review every (hours)",
        help_text="For orders until further notice: how often the issuer must re-affirm it.",
    )
    attachments = MultipleFileField(
        required=False,
        label="Attachments (PDF, JPEG or PNG, up to 10 MB each, 5 at most)",
    )
    supersedes = SupersedeChoiceField(
        queryset=Bulletin.objects.none(),
        required=False,
        label="Supersedes (optional)",
        help_text="Earlier bulletins this one replaces. They are lifted when this one takes "
        'effect (at publication, or at its set time), with the reason "Superseded by" it.',
    )
    template_version = forms.ModelChoiceField(
        queryset=TemplateVersion.objects.none(),
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "That template is not one of your agency's."},
    )

    class Meta:
        model = Bulletin
        fields = [
            "title",
            "instruction",
            "body",
            "kind",
            "priority",
            "to_sworn",
            "to_auxiliary",
            "to_civilian",
            "supervisors_only",
            "is_exercise",
            "topic",
            "does_not_relax",
        ]
        labels = {
            "title": "Title",
            "instruction": "Instructions",
            "body": "Body",
            "kind": "Kind",
            "priority": "Priority",
            "to_sworn": "Sworn members",
            "to_auxiliary": "Auxiliary members",
            "to_civilian": "Civilian members",
            "supervisors_only": "Only supervisors",
            "is_exercise": "Exercise - training, not a real order",
            "topic": "Topic (optional)",
            "does_not_relax": "My order does not relax it",
        }
        help_texts = {
            "instruction": "One line: what the reader must do.",
            "body": "Details. Markdown: **bold**, lists with -, links.",
            "is_exercise": "Marked EXERCISE everywhere and counted apart. "
            "It can never become a real order: for that, write a new one.",
            "topic": "Orders on one topic from different levels of command are compared.",
        }
        widgets = {"body": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args, user, now=None, template_version=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.now = now or timezone.now()
        self.fields["title"].validators.append(refuse_control_characters)
        self.fields["instruction"].validators.append(refuse_control_characters)
        self.fields["body"].validators.append(refuse_control_characters_but_line_breaks)
        scope = permissions.draftable_units(user).order_by("path")  # beyond it: approval
        self.fields["units"].queryset = scope
        self.fields["units_only"].queryset = scope
        self.unit_depths = {unit.pk: unit.depth for unit in scope}
        for name in ("effective_at", "expires_at"):
            self.fields[name].label += f" ({zone_name()} time)"
        bulletin = self.instance
        self._supersede_choices(bulletin)
        self.fields["template_version"].queryset = self._template_versions(user, bulletin)
        self.started_from = bulletin.template_version if bulletin.template_version_id else None
        self.fields["topic"].queryset = conflicts.topics_for(user, bulletin)
        self.higher_orders = conflicts.higher_orders(bulletin, self.now, viewer=user)
        quiz.add_settings_fields(self, self._response_settings(user, bulletin, template_version))
        if bulletin.pk:
            self._initial_from_bulletin(bulletin)
        elif template_version is not None:
            self._initial_from_template(template_version, scope)

    @staticmethod
    def _response_settings(user, bulletin, template_version):
        """What the reader signs and answers: the draft's, the template's, or for a new
        bulletin the agency's default statement."""
        source = bulletin if bulletin.pk else template_version
        settings = {name: getattr(source, name) for name in quiz.SETTINGS} if source else {}
        if not bulletin.pk and not settings.get("statement"):
            settings["statement"] = agency_statement(user.agency_id)
        return settings

    @staticmethod
    def _template_versions(user, bulletin):
        """Versions of the agency's templates; an archived one only if the draft has it."""
        versions = TemplateVersion.objects.select_related("template")
        if not user.is_superuser:
            root = scope_root(user)
            if root is None:
                return TemplateVersion.objects.none()
            versions = versions.filter(template__agency__path=root.agency_path)
        kept = bulletin.template_version_id
        return versions.filter(
            models.Q(template__is_archived=False) | models.Q(pk=kept if kept else None)
        )

    def _initial_from_template(self, version, scope):
        """Start from a template's version: its text and settings, an end counted from now, and
        the suggested units the author may write to."""
        for name in (
            "title", "instruction", "body", "kind", "priority",
            "to_sworn", "to_auxiliary", "to_civilian", "supervisors_only",
        ):  # fmt: skip
            self.initial[name] = getattr(version, name)
        self.initial["template_version"] = version.pk
        self.initial["topic"] = version.topic_id
        self.started_from = version
        # Only units in the author's command are ticked for him: beyond it needs approval.
        allowed = set(scope_units(self.user).values_list("pk", flat=True))
        self.initial["units"] = [u.pk for u in version.suggested_units.all() if u.pk in allowed]
        self.initial["until_further_notice"] = version.duration is None
        self.initial["expires_at"] = self.now + version.duration if version.duration else None
        self.initial["review_hours"] = int(version.review_interval.total_seconds() // 3600)

    def _supersede_choices(self, bulletin):
        """The most recent live bulletins the author may lift (and those already chosen)."""
        live = supersedable(self.user, self.now)  # live: never the draft itself
        pks = list(live.values_list("pk", flat=True)[:SUPERSEDE_CHOICES])
        if bulletin.pk:
            chosen = live.filter(pk__in=bulletin.supersedes.values("pk"))
            pks += list(chosen.values_list("pk", flat=True))
            self.initial["supersedes"] = list(bulletin.supersedes.values_list("pk", flat=True))
        self.fields["supersedes"].queryset = live.filter(pk__in=pks)

    def _initial_from_bulletin(self, bulletin):
        rows = list(bulletin.audience.all())
        self.initial["units"] = [row.unit_id for row in rows if row.include_subtree]
        self.initial["units_only"] = [row.unit_id for row in rows if not row.include_subtree]
        self.initial["starts"] = "at" if bulletin.effective_at else "now"
        self.initial["effective_at"] = bulletin.effective_at
        self.initial["expires_at"] = bulletin.expires_at
        self.initial["until_further_notice"] = bulletin.pk and bulletin.expires_at is None
        self.initial["review_hours"] = int(bulletin.review_interval.total_seconds() // 3600)
        self.initial["template_version"] = bulletin.template_version_id

    def clean(self):
        cleaned = super().clean()
        units = list(cleaned.get("units") or [])
        units_only = [u for u in cleaned.get("units_only") or [] if u not in units]
        if not units and not units_only:
            self.add_error("units", "Choose at least one unit.")
        cleaned["targets"] = [(u, True) for u in units] + [(u, False) for u in units_only]
        if not any(cleaned.get(f"to_{c}") for c in ("sworn", "auxiliary", "civilian")):
            self.add_error("to_sworn", "Choose at least one member class.")
        if cleaned.get("starts") == "at":
            effective_at = cleaned.get("effective_at")
            if effective_at is None:
                self.add_error("effective_at", "Give the time it takes effect.")
            elif effective_at <= self.now:
                self.add_error("effective_at", "A scheduled time must be in the future.")
        else:
            cleaned["effective_at"] = None
        self.clean_time_span(cleaned)
        start = cleaned.get("effective_at") or self.now
        if cleaned.get("expires_at") and cleaned["expires_at"] <= start:
            self.add_error("expires_at", "The end must be after the bulletin takes effect.")
        files = cleaned.get("attachments") or []
        existing = self.instance.attachments.count() if self.instance.pk else 0
        if existing + len(files) > Attachment.MAX_PER_BULLETIN:
            self.add_error("attachments", "A bulletin can have 5 attachments at most.")
        else:
            types = []
            for upload in files:
                try:
                    types.append(check_upload(upload))
                except ValidationError as error:
                    self.add_error("attachments", error)
            cleaned["attachment_types"] = types
        self._check_higher_orders(cleaned)
        self.response_settings = quiz.clean_settings(self, kind=cleaned.get("kind"))
        return cleaned

    def _check_higher_orders(self, cleaned):
        """An Order on a topic under a higher command's order: the author's word is needed."""
        subject = conflicts.subject_of_form(cleaned)
        self.higher_orders = conflicts.higher_orders(subject, self.now, viewer=self.user)
        if self.higher_orders and not cleaned.get("does_not_relax"):
            self.add_error("does_not_relax", conflicts.must_tick_message(self.higher_orders))

    def draft_fields(self):
        cleaned = self.cleaned_data
        fields = {name: cleaned[name] for name in self.Meta.fields}
        fields["effective_at"] = cleaned["effective_at"]
        fields["expires_at"] = cleaned["expires_at"]
        fields["review_interval"] = timedelta(hours=cleaned["review_hours"])
        fields["until_further_notice"] = cleaned["until_further_notice"]
        fields["template_version"] = cleaned.get("template_version")
        fields["supersedes"] = list(cleaned.get("supersedes") or [])
        fields.update(self.response_settings)
        return fields


class AmendForm(TimeSpanMixin, forms.Form):
    title = forms.CharField(max_length=200, label="Title", validators=[refuse_control_characters])
    instruction = forms.CharField(
        max_length=300, label="Instructions", validators=[refuse_control_characters]
    )
    body = forms.CharField(
        required=False,
        label="Body",
        widget=forms.Textarea(attrs={"rows": 8}),
        validators=[refuse_control_characters_but_line_breaks],
    )
    priority = forms.TypedChoiceField(
        choices=Bulletin.Priority.choices, coerce=int, label="Priority"
    )
    expires_at = BulletinForm.base_fields["expires_at"]
    until_further_notice = forms.BooleanField(required=False, label="Until further notice")
    is_material = forms.TypedChoiceField(
        label="What kind of change is this?",
        choices=[
            ("yes", "It changes what officers must do: everyone acknowledges again"),
            ("no", "A spelling correction or a new end time: acknowledgements carry over"),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        help_text=corrections.HELP_TEXT,
    )
    reason = forms.CharField(
        label="Reason",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        validators=[refuse_control_characters_but_line_breaks],
    )

    def __init__(self, *args, bulletin, now=None, **kwargs):
        initial = {
            "title": bulletin.title,
            "instruction": bulletin.instruction,
            "body": bulletin.body,
            "priority": bulletin.priority,
            "expires_at": bulletin.expires_at,
            "until_further_notice": bulletin.expires_at is None,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.bulletin = bulletin
        self.now = now or timezone.now()
        self.fields["expires_at"].label += f" ({zone_name()} time)"
        quiz.add_settings_fields(self, {name: getattr(bulletin, name) for name in quiz.SETTINGS})

    def clean(self):
        cleaned = super().clean()
        self.clean_time_span(cleaned)
        expires_at = cleaned.get("expires_at")
        if expires_at and expires_at <= max(self.now, self.bulletin.effective_at):
            self.add_error("expires_at", "The end must be in the future.")
        self.response_settings = quiz.clean_settings(self, kind=self.bulletin.kind)
        return cleaned

    def changes(self):
        names = ("title", "instruction", "body", "priority", "expires_at")
        changes = {name: self.cleaned_data[name] for name in names}
        end = self.bulletin.expires_at
        if end and changes["expires_at"] == end.replace(second=0, microsecond=0):
            changes["expires_at"] = end  # the field shows minutes: an untouched end is the same
        changes.update(quiz.posted_settings(self, self.response_settings))
        return changes


class LiftForm(forms.Form):
    when = forms.ChoiceField(
        choices=[("now", "Now"), ("later", "At a set time")],
        widget=forms.RadioSelect,
        initial="now",
        required=False,
        label="Lift it",
    )
    lift_at = forms.DateTimeField(
        required=False,
        label="Lift at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    reason = forms.CharField(
        label="Reason",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_control_characters_but_line_breaks],
    )

    def __init__(self, *args, now=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()
        self.fields["lift_at"].label += f" ({zone_name()} time)"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("when") != "later":
            cleaned["lift_at"] = None
        elif cleaned.get("lift_at") is None:
            self.add_error("lift_at", "Give the time to lift it.")
        elif cleaned["lift_at"] <= self.now:
            self.add_error("lift_at", "A scheduled lift must be in the future.")
        return cleaned


class HistoryFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    kind = forms.ChoiceField(
        required=False, choices=[("", "Any kind"), *Bulletin.Kind.choices], label="Kind"
    )
    state = forms.ChoiceField(
        required=False,
        choices=[("", "Ended or lifted"), ("expired", "Ended"), ("lifted", "Lifted")],
        label="State",
    )


class OutstandingFilterForm(forms.Form):
    unit = forms.ModelChoiceField(queryset=Unit.objects.none(), required=False, label="Unit")
    opened = forms.ChoiceField(
        required=False,
        choices=[("", "Opened or not"), ("yes", "Opened it"), ("no", "Never opened")],
        label="Opened",
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("unit", "Unit"),
            ("name", "Name"),
            ("badge", "Badge"),
            ("opened", "Opened"),
            ("reminders", "Reminders sent"),
        ],
        label="Sort by",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].queryset = scope_units(user).order_by("path")

"""The Templates pages: an agency's admins keep the bulletins it issues again and again."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bulletins import conflicts, quiz
from bulletins.forms import UnitChoiceField
from bulletins.models import Bulletin, BulletinTemplate, TemplateVersion, Topic
from bulletins.services import templates
from portal.scope import MANAGE_PEOPLE, scope_root, scope_units
from portal.validators import (
    refuse_control_characters,
    refuse_control_characters_but_line_breaks,
)


def _manager_only(request):
    if not request.user.has_perm(MANAGE_PEOPLE):
        raise PermissionDenied


def _agency(user):
    return scope_root(user) or (user.agency if user.is_superuser else None)


def manageable_templates(user):
    """The templates `user` may keep: their agency's (every agency's for a superuser)."""
    if not user.has_perm(MANAGE_PEOPLE):
        return BulletinTemplate.objects.none()
    if user.is_superuser:
        return BulletinTemplate.objects.all()
    root = scope_root(user)
    return BulletinTemplate.objects.filter(agency=root) if root else BulletinTemplate.objects.none()


class TemplateForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        label="Template name",
        help_text="What authors see under Start from a template.",
        validators=[refuse_control_characters],
    )
    title = forms.CharField(max_length=200, label="Title", validators=[refuse_control_characters])
    instruction = forms.CharField(
        max_length=300,
        label="Instructions",
        help_text="One line: what the reader must do.",
        validators=[refuse_control_characters],
    )
    body = forms.CharField(
        required=False,
        label="Body",
        help_text="Details. Markdown: **bold**, lists with -, links.",
        widget=forms.Textarea(attrs={"rows": 8}),
        validators=[refuse_control_characters_but_line_breaks],
    )
    kind = forms.ChoiceField(choices=Bulletin.Kind.choices, label="Kind")
    priority = forms.TypedChoiceField(
        choices=Bulletin.Priority.choices, coerce=int, label="Priority"
    )
    topic = forms.ModelChoiceField(
        queryset=Topic.objects.none(), required=False, label="Topic (optional)"
    )
    duration_hours = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=24 * 365,
        label="Runs for (hours)",
        help_text="The end time a bulletin started from it gets, counted from when it is written.",
    )
    until_further_notice = forms.BooleanField(required=False, label="Until further notice")
    review_hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 30,
        initial=72,
        label="Review every (hours)",
        help_text="For orders until further notice: how often the issuer must re-affirm it.",
    )
    to_sworn = forms.BooleanField(required=False, initial=True, label="Sworn members")
    to_auxiliary = forms.BooleanField(required=False, initial=True, label="Auxiliary members")
    to_civilian = forms.BooleanField(required=False, initial=True, label="Civilian members")
    supervisors_only = forms.BooleanField(required=False, label="Only supervisors")
    suggested_units = UnitChoiceField(
        queryset=None,
        required=False,
        label="Suggested units (with all the units under them)",
        help_text="Ticked for an author who may write to them.",
    )

    def __init__(self, *args, user, version=None, template=None, **kwargs):
        if version is not None:
            kwargs["initial"] = {
                "name": template.name,
                **{name: getattr(version, name) for name in templates.CONTENT_FIELDS},
                "duration_hours": _hours(version.duration),
                "until_further_notice": version.duration is None,
                "review_hours": _hours(version.review_interval),
                "suggested_units": [u.pk for u in version.suggested_units.all()],
            }
        super().__init__(*args, **kwargs)
        scope = scope_units(user).order_by("path")
        self.fields["suggested_units"].queryset = scope
        self.fields["topic"].queryset = conflicts.topics_for(user)
        self.unit_depths = {unit.pk: unit.depth for unit in scope}
        source = {name: getattr(version, name) for name in quiz.SETTINGS} if version else {}
        quiz.add_settings_fields(self, source)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("until_further_notice") and cleaned.get("duration_hours"):
            self.add_error(
                "duration_hours", "Give a number of hours or tick Until further notice, not both."
            )
        elif (
            not cleaned.get("until_further_notice")
            and not cleaned.get("duration_hours")
            and "duration_hours" not in self.errors
        ):
            self.add_error(
                "duration_hours", "Give a number of hours, or tick Until further notice."
            )
        if not any(cleaned.get(f"to_{c}") for c in ("sworn", "auxiliary", "civilian")):
            self.add_error("to_sworn", "Choose at least one member class.")
        self.response_settings = quiz.clean_settings(self, kind=cleaned.get("kind"))
        return cleaned

    def content(self):
        cleaned = self.cleaned_data
        content = {name: cleaned[name] for name in templates.CONTENT_FIELDS if name in cleaned}
        hours = cleaned.get("duration_hours")
        content["duration"] = None if cleaned["until_further_notice"] else timedelta(hours=hours)
        content["review_interval"] = timedelta(hours=cleaned["review_hours"])
        content.update(self.response_settings)
        return content


def _hours(duration):
    return int(duration.total_seconds() // 3600) if duration else None


@never_cache
@require_GET
def template_list(request):
    _manager_only(request)
    rows = (
        manageable_templates(request.user)
        .annotate(current=Max("versions__number"))
        .order_by("is_archived", "name")
    )
    rows = list(rows)
    current = {
        (v.template_id, v.number): v
        for v in TemplateVersion.objects.filter(template__in=[t.pk for t in rows])
    }
    for row in rows:
        row.version = current.get((row.pk, row.current))
    context = {"rows": rows, "can_create": _agency(request.user) is not None}
    return render(request, "bulletins/templates/list.html", context)


def _save(request, form, template=None):
    data = form.cleaned_data
    now = timezone.now()
    try:
        if template is None:
            created = templates.create_template(
                by=request.user,
                now=now,
                agency=_agency(request.user),
                name=data["name"],
                suggested_units=data["suggested_units"],
                **form.content(),
            )
            messages.success(request, f"Template {created.name} saved as version 1.")
        else:
            version = templates.change_template(
                template,
                by=request.user,
                now=now,
                name=data["name"],
                suggested_units=data["suggested_units"],
                **form.content(),
            )
            if version is None:
                messages.info(request, "Saved. The content did not change: no new version.")
            else:
                messages.success(request, f"Saved as version {version.number}.")
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, error)
        return False
    return True


@require_http_methods(["GET", "POST"])
def template_create(request):
    _manager_only(request)
    if _agency(request.user) is None:
        raise PermissionDenied
    form = TemplateForm(request.POST or None, user=request.user)
    if request.method == "POST":
        if form.is_valid() and _save(request, form):
            return redirect("bulletins:templates")
        status = 422
    else:
        status = 200
    context = {"form": form, "template": None}
    return render(request, "bulletins/templates/form.html", context, status=status)


@require_http_methods(["GET", "POST"])
def template_edit(request, pk):
    _manager_only(request)
    template = get_object_or_404(manageable_templates(request.user), pk=pk)
    version = templates.current_version(template)
    form = TemplateForm(request.POST or None, user=request.user, version=version, template=template)
    if request.method == "POST":
        if form.is_valid() and _save(request, form, template):
            return redirect("bulletins:templates")
        status = 422
    else:
        status = 200
    context = {"form": form, "template": template, "version": version}
    return render(request, "bulletins/templates/form.html", context, status=status)


@require_POST
def template_archive(request, pk):
    _manager_only(request)
    template = get_object_or_404(manageable_templates(request.user), pk=pk)
    archived = request.POST.get("archived") == "yes"
    templates.set_archived(template, by=request.user, now=timezone.now(), archived=archived)
    if archived:
        messages.success(request, f"{template.name} archived: authors no longer see it.")
    else:
        messages.success(request, f"{template.name} restored: authors can start from it again.")
    return redirect("bulletins:templates")


def offered_templates(user):
    """The active templates an author of `user`'s agency may start from, by name."""
    active = BulletinTemplate.objects.filter(is_archived=False).order_by("name")
    if user.is_superuser:
        return active
    root = scope_root(user)
    if root is None:
        return BulletinTemplate.objects.none()
    return active.filter(agency__path=root.agency_path)


def chosen_version(user, pk):
    """The current version of offered template `pk` (?template= on New bulletin), or a 404."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404 from None
    template = get_object_or_404(offered_templates(user), pk=pk)
    version = templates.current_version(template)
    if version is None:
        raise Http404
    return version

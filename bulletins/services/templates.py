"""Bulletin templates: kept by an agency's admins, used by its authors. Every save that changes
a template's content makes a new version; a bulletin records the version it started from."""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from bulletins import quiz
from bulletins.models import BulletinTemplate, TemplateVersion
from portal import audit
from portal.scope import MANAGE_PEOPLE, scope_root

# What a version holds besides its suggested units.
CONTENT_FIELDS = (
    "title", "instruction", "body", "kind", "priority", "duration", "review_interval",
    "to_sworn", "to_auxiliary", "to_civilian", "supervisors_only",
    "statement", "implemented_from", "implemented_prompt", "questions", "topic",
)  # fmt: skip


def can_manage_templates(user, agency):
    """Agency admins (whoever may manage people there) keep the agency's templates."""
    if not user.is_authenticated or not user.has_perm(MANAGE_PEOPLE):
        return False
    if user.is_superuser:
        return True
    root = scope_root(user)
    return root is not None and agency is not None and root.pk == agency.pk


def current_version(template):
    return template.versions.order_by("-number").first()


def _check(by, agency, suggested_units):
    if not can_manage_templates(by, agency):
        raise PermissionDenied
    outside = [u.name for u in suggested_units if not u.path.startswith(agency.path)]
    if outside:
        raise ValidationError({"suggested_units": f"Outside your agency: {', '.join(outside)}."})


def _check_name(agency, name, template=None):
    same = BulletinTemplate.objects.filter(agency=agency, name__iexact=name.strip())
    if template is not None:
        same = same.exclude(pk=template.pk)
    if not name.strip():
        raise ValidationError({"name": "Give the template a name."})
    if same.exists():
        raise ValidationError({"name": NAME_TAKEN})


NAME_TAKEN = "Another template of your agency has this name."


@contextmanager
def _name_taken_is_a_field_error():
    """Two admins saving the same name at once: the unique constraint decides, and the loser
    gets the same field error as the check before it (not a 500)."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as error:
        raise ValidationError({"name": NAME_TAKEN}) from error


def _new_version(template, number, *, by, now, suggested_units, content):
    quiz.check(content.get("questions", []))
    version = TemplateVersion.objects.create(
        template=template, number=number, created_at=now, created_by=by, **content
    )
    version.suggested_units.set(suggested_units)
    return version


@transaction.atomic
def create_template(*, by, now, agency, name, suggested_units=(), **content):
    """A new template and its version 1."""
    suggested_units = list(suggested_units)
    _check(by, agency, suggested_units)
    _check_name(agency, name)
    with _name_taken_is_a_field_error():
        template = BulletinTemplate.objects.create(
            agency=agency, name=name.strip(), created_at=now, created_by=by
        )
    version = _new_version(
        template, 1, by=by, now=now, suggested_units=suggested_units, content=content
    )
    audit.record("template.create", by=by, obj=template, version=version.number, now=now)
    return template


def _differs(version, content, suggested_units):
    if any(getattr(version, name) != value for name, value in content.items()):
        return True
    kept = set(version.suggested_units.values_list("pk", flat=True))
    return kept != {unit.pk for unit in suggested_units}


@transaction.atomic
def change_template(template, *, by, now, name, suggested_units=(), **content):
    """Save a template: a new version (number + 1) when its content changed, none when it did
    not; a new name alone renames it. Returns the new version, or None."""
    suggested_units = list(suggested_units)
    template = BulletinTemplate.objects.select_for_update().get(pk=template.pk)
    _check(by, template.agency, suggested_units)
    _check_name(template.agency, name, template)
    current = current_version(template)
    renamed = name.strip() != template.name
    version = None
    if current is None or _differs(current, content, suggested_units):
        number = current.number + 1 if current else 1
        version = _new_version(
            template, number, by=by, now=now, suggested_units=suggested_units, content=content
        )
    if renamed:
        template.name = name.strip()
        with _name_taken_is_a_field_error():
            template.save(update_fields=["name"])
    if version is not None or renamed:
        audit.record(
            "template.change",
            by=by,
            obj=template,
            version=(version or current).number,
            now=now,
            renamed=renamed,
        )
    return version


@transaction.atomic
def set_archived(template, *, by, now, archived):
    """Archive (no longer offered to authors) or restore a template. Nothing is deleted."""
    template = BulletinTemplate.objects.select_for_update().get(pk=template.pk)
    if not can_manage_templates(by, template.agency):
        raise PermissionDenied
    if template.is_archived == archived:
        return template
    template.is_archived = archived
    template.save(update_fields=["is_archived"])
    audit.record("template.archive", by=by, obj=template, now=now, archived=archived)
    return template

"""What an agency's admins keep for all its bulletins: the default statement the reader signs,
the reasons an officer may give for "I cannot comply", and the topics orders are filed under.

Nothing is deleted: a reason or topic is archived (kept for the answers and bulletins that
name it, no longer offered). Every change is audited.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from bulletins.models import AgencyPolicy, CannotComplyReason, Topic
from portal import audit
from portal.scope import MANAGE_PEOPLE, scope_root


class AgencyList:
    """One list kept per agency: its model, the name of its text field and its words."""

    def __init__(self, key, model, field, noun):
        self.key, self.model, self.field, self.noun = key, model, field, noun

    def of(self, agency):
        return self.model.objects.filter(agency=agency).order_by("is_archived", "position", "pk")

    def text(self, item):
        return getattr(item, self.field)


REASONS = AgencyList("reasons", CannotComplyReason, "label", "reason")
TOPICS = AgencyList("topics", Topic, "name", "topic")
LISTS = {kept.key: kept for kept in (REASONS, TOPICS)}


def can_keep_lists(user, agency):
    """The agency's admins (and superusers) keep its lists."""
    if not user.is_authenticated or not user.has_perm(MANAGE_PEOPLE) or agency is None:
        return False
    if user.is_superuser:
        return True
    root = scope_root(user)
    return root is not None and root.pk == agency.pk


def _check(by, agency):
    if not can_keep_lists(by, agency):
        raise PermissionDenied


@transaction.atomic
def set_statement(agency, *, by, now, statement):
    """The agency's default statement: pre-filled on new bulletins, signed where a version has
    none of its own."""
    _check(by, agency)
    statement = statement.strip()
    if not statement:
        raise ValidationError({"statement": "Write the statement readers sign."})
    policy, _ = AgencyPolicy.objects.select_for_update().get_or_create(agency=agency)
    if policy.statement == statement:
        return policy
    before, policy.statement = policy.statement, statement
    policy.save(update_fields=["statement"])
    audit.record("agency.statement", by=by, obj=policy, now=now, before=before, after=statement)
    return policy


def _check_name(kept, agency, name, item=None):
    name = name.strip()
    if not name:
        raise ValidationError({"name": f"Give the {kept.noun} a name."})
    same = kept.model.objects.filter(agency=agency, **{f"{kept.field}__iexact": name})
    if item is not None:
        same = same.exclude(pk=item.pk)
    twin = same.first()
    if twin is not None and twin.is_archived:
        raise ValidationError({"name": f"An archived {kept.noun} has this name: restore it."})
    if twin is not None:
        raise ValidationError({"name": f"There is already a {kept.noun} with this name."})
    return name


def _saved(kept, save):
    """Two admins saving the same name at once: the unique constraint decides, and the loser
    gets the same field error as the check before it."""
    try:
        with transaction.atomic():
            return save()
    except IntegrityError as error:
        message = f"There is already a {kept.noun} with this name."
        raise ValidationError({"name": message}) from error


@transaction.atomic
def add_item(kept, agency, *, by, now, name):
    _check(by, agency)
    name = _check_name(kept, agency, name)
    last = kept.model.objects.filter(agency=agency).aggregate(last=Max("position"))["last"]
    position = 0 if last is None else last + 1
    item = _saved(
        kept,
        lambda: kept.model.objects.create(agency=agency, position=position, **{kept.field: name}),
    )
    audit.record(f"agency.{kept.noun}_add", by=by, obj=item, now=now, name=name)
    return item


@transaction.atomic
def rename_item(kept, item, *, by, now, name):
    _check(by, item.agency)
    item = kept.model.objects.select_for_update().get(pk=item.pk)
    name = _check_name(kept, item.agency, name, item)
    before = kept.text(item)
    if before == name:
        return item
    setattr(item, kept.field, name)
    _saved(kept, lambda: item.save(update_fields=[kept.field]))
    audit.record(f"agency.{kept.noun}_rename", by=by, obj=item, now=now, before=before, after=name)
    return item


@transaction.atomic
def move_item(kept, item, *, by, now, step):
    """Move an offered item one place up (`step` -1) or down (+1) among the offered ones."""
    _check(by, item.agency)
    offered = list(
        kept.model.objects.select_for_update()
        .filter(agency=item.agency, is_archived=False)
        .order_by("position", "pk")
    )
    index = next((i for i, row in enumerate(offered) if row.pk == item.pk), None)
    if index is None or not 0 <= index + step < len(offered):
        return False
    offered[index], offered[index + step] = offered[index + step], offered[index]
    for position, row in enumerate(offered):
        row.position = position
    kept.model.objects.bulk_update(offered, ["position"])
    audit.record(f"agency.{kept.noun}_move", by=by, obj=item, now=now, position=index + step + 1)
    return True


@transaction.atomic
def set_archived(kept, item, *, by, now, archived):
    """Archive (kept for history, no longer offered) or restore an item."""
    _check(by, item.agency)
    item = kept.model.objects.select_for_update().get(pk=item.pk)
    if item.is_archived == archived:
        return item
    item.is_archived = archived
    item.save(update_fields=["is_archived"])
    audit.record(f"agency.{kept.noun}_archive", by=by, obj=item, now=now, archived=archived)
    return item

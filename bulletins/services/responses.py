"""What an officer says back to an Order besides "I have read it": "I cannot comply" (with a
reason, up the chain at once until a supervisor resolves it) and "Implemented" (a report
required from part of the audience).

A response is evidence like a receipt: append-only, audited, never deleted; a cannot-comply
answer is resolved once. Answering "cannot comply" is not an acknowledgement: the person stays
outstanding until they acknowledge. The supervisors hear of it through the outbox, in the same
transaction (delivered right after commit); `sweep_cannot_comply`, run by the clock's sweep,
takes an answer nobody resolves one unit up the chain at each step of the escalation cadence.
"""

import hashlib

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from bulletins import notifications
from bulletins.caching import changes
from bulletins.models import (
    Bulletin,
    BulletinVersion,
    CannotComplyReason,
    NotificationEvent,
    Response,
    ResponseEscalation,
)
from bulletins.services import reading
from bulletins.services.chasing import delay_for
from portal import audit
from portal.models import Unit, User
from portal.scope import is_in_scope

Event = NotificationEvent.Event
ImplementedFrom = Bulletin.ImplementedFrom
MAX_TEXT = 2000
OTHER = "Other"  # the reason whose label asks for details
CHAIN_ROLES = (User.Role.SUPERVISOR, User.Role.ADMIN)


def _check_text(name, text, *, required=False, missing="Write the details."):
    text = (text or "").strip()
    if required and not text:
        raise ValidationError({name: missing})
    if len(text) > MAX_TEXT:
        raise ValidationError({name: f"Keep it to {MAX_TEXT} characters (this has {len(text)})."})
    return text


def _order_in_force(bulletin, user, now):
    """The checks every answer shares: Bulletin.DoesNotExist (a 404) unless the published
    `bulletin` is addressed to `user`; a ValidationError unless it is an Order in force."""
    if bulletin.status == Bulletin.Status.DRAFT or not bulletin.is_addressed_to(user):
        raise Bulletin.DoesNotExist
    if not bulletin.requires_acknowledgement:
        raise ValidationError("Only Orders are answered this way.")
    if bulletin.state_at(now) != Bulletin.Status.IN_FORCE:
        raise ValidationError("This order is no longer in force.")


def statement_hash(bulletin, version):
    """sha256 of the statement the reader signs for `version`: its own, else the agency's."""
    statement = reading.statement_for(version.statement, bulletin.agency_id)
    return hashlib.sha256(statement.encode()).hexdigest()


def reasons(bulletin):
    """The reasons an officer may give for "I cannot comply" to `bulletin`."""
    return CannotComplyReason.objects.filter(agency_id=bulletin.agency_id, is_archived=False)


def _reason(bulletin, reason):
    """The CannotComplyReason `reason` (a row or its id) if the bulletin's agency offers it."""
    reason_id = getattr(reason, "pk", reason)
    try:
        return reasons(bulletin).get(pk=int(reason_id))
    except (TypeError, ValueError, CannotComplyReason.DoesNotExist):
        raise ValidationError({"reason": "Choose one of the reasons."}) from None


def _new_response(bulletin, kind, *, user, now, request, **fields):
    reading._ensure_recipient(bulletin, user, now)  # moved in after publication: told now
    version = BulletinVersion.objects.get(bulletin=bulletin, number=bulletin.version)
    evidence = {"auth_method": "", "ip": None, "user_agent": ""}
    if request is not None:  # as a receipt records them
        evidence = {
            "auth_method": reading.authentication_summary(request),
            "ip": audit.client_ip(request),
            "user_agent": request.headers.get("user-agent", "")[:400],
        }
    return Response.objects.create(
        bulletin=bulletin,
        version=version,
        user=user,
        unit_id=user.unit_id,
        kind=kind,
        statement_hash=statement_hash(bulletin, version),
        created_at=now,
        **evidence,
        **fields,
    )


@transaction.atomic
def cannot_comply(bulletin, *, user, reason, detail, now, request=None):
    """Record that `user` cannot comply with the Order `bulletin` (`reason`: one of `reasons`,
    a row or its id; `detail` required for "Other") and tell their supervisors at once. The
    same answer sent twice (a double tap) is recorded once: the open one is returned."""
    _order_in_force(bulletin, user, now)
    reason = _reason(bulletin, reason)
    detail = _check_text("detail", detail, required=reason.label == OTHER,
                         missing='Write the details when the reason is "Other".')  # fmt: skip
    User.objects.select_for_update().filter(pk=user.pk).first()  # one answer at a time
    same = (
        open_cannot_comply(bulletin)
        .filter(user=user, version__number=bulletin.version, reason=reason, detail=detail)
        .first()
    )
    if same is not None:
        return same
    response = _new_response(
        bulletin, Response.Kind.CANNOT_COMPLY, user=user, now=now, request=request,
        reason=reason, reason_label=reason.label, detail=detail,
    )  # fmt: skip
    audit.record("bulletin.cannot_comply", by=user, obj=bulletin, version=bulletin.version,
                 now=now, request=request, response=response.pk, reason=reason.label,
                 unit=user.unit_id)  # fmt: skip
    notifications.queue_event(
        bulletin, Event.CANNOT_COMPLY, now=now, key=f"r{response.pk}",
        detail={"response": response.pk},
    )  # fmt: skip
    _told(response)
    return response


def must_report_implemented(bulletin, user):
    """Whether `user` is asked to report the Order `bulletin` implemented (`implemented_from`):
    everyone it is addressed to, its supervisors only, or the supervisors of each unit told (one
    report per unit counts). Assumes the caller knows the bulletin is addressed to `user`."""
    required = bulletin.implemented_from
    if not bulletin.requires_acknowledgement or required == ImplementedFrom.NOBODY:
        return False
    if required == ImplementedFrom.EVERYONE:
        return True
    return user.role in CHAIN_ROLES and (
        required == ImplementedFrom.SUPERVISORS or user.unit_id is not None
    )


@transaction.atomic
def report_implemented(bulletin, *, user, note, now, request=None):
    """Record that `user` implemented the Order `bulletin` (with an optional `note`). Once per
    person and version: a second report returns the first."""
    _order_in_force(bulletin, user, now)
    if not must_report_implemented(bulletin, user):
        raise ValidationError("You are not asked to report this order implemented.")
    note = _check_text("note", note)
    User.objects.select_for_update().filter(pk=user.pk).first()
    earlier = Response.objects.filter(
        bulletin=bulletin, user=user, kind=Response.Kind.IMPLEMENTED,
        version__number=bulletin.version,
    ).first()  # fmt: skip
    if earlier is not None:
        return earlier
    response = _new_response(
        bulletin, Response.Kind.IMPLEMENTED, user=user, now=now, request=request, detail=note
    )
    audit.record("bulletin.implemented", by=user, obj=bulletin, version=bulletin.version,
                 now=now, request=request, response=response.pk, unit=user.unit_id)  # fmt: skip
    _told(response)
    return response


def can_resolve(user, response):
    """A supervisor or admin whose scope holds the unit the person answered from."""
    return (
        response.kind == Response.Kind.CANNOT_COMPLY
        and (user.is_superuser or user.role in CHAIN_ROLES)
        and response.unit is not None
        and is_in_scope(user, response.unit)
    )


@transaction.atomic
def resolve(response, *, by, resolution, now):
    """Record how `by` resolved the cannot-comply answer `response` ("Paired with P.O. Diaz at
    08:40") and tell the officer. Once: a second resolution is refused, saying who resolved it."""
    if not can_resolve(by, response):
        raise PermissionDenied
    resolution = _check_text("resolution", resolution, required=True,
                             missing="Write how it was resolved.")  # fmt: skip
    written = Response.objects.filter(pk=response.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolved_by=by, resolution=resolution
    )
    response.refresh_from_db()
    if not written:
        when = timezone.localtime(response.resolved_at)
        raise ValidationError(
            f"Already resolved by {response.resolved_by.name} at {when:%H:%M} on {when:%d %b}."
        )
    bulletin = response.bulletin
    audit.record("bulletin.cannot_comply_resolved", by=by, obj=bulletin,
                 version=response.version.number, now=now, response=response.pk,
                 officer=response.user_id)  # fmt: skip
    notifications.queue_event(
        bulletin, Event.CANNOT_COMPLY_RESOLVED, now=now, key=f"r{response.pk}",
        detail={"response": response.pk},
    )  # fmt: skip
    _told(response)
    return response


def open_cannot_comply(bulletin):
    """The unresolved cannot-comply answers to `bulletin`."""
    return Response.objects.filter(
        bulletin=bulletin, kind=Response.Kind.CANNOT_COMPLY, resolved_at__isnull=True
    )


def chain_paths(unit):
    """The paths of `unit` and every unit above it, nearest first."""
    path = unit.path
    return [path[:end] for end in range(len(path), 0, -Unit.steplen)]


def overseers_of(unit):
    """Active supervisors and admins whose scope holds `unit`: those of the unit and every unit
    above it, and the agency's admins."""
    return User.objects.filter(
        Q(role=User.Role.SUPERVISOR, unit__path__in=chain_paths(unit))
        | Q(role=User.Role.ADMIN, unit__path__startswith=unit.agency_path),
        is_active=True,
    ).order_by()


def _told(response):
    """What changed for the caches: the person's own page and the bulletin's figures, and the
    banner of every supervisor whose scope holds the person's unit."""
    changes.reader_changed(response.user, response.bulletin_id)
    if response.unit_id is not None:
        changes.readers_changed(overseers_of(response.unit).values_list("pk", flat=True))


def _due_steps(now):
    """(response id, bulletin id, step, unit path) for each escalation step due at `now`: step
    k once the priority's delay has passed k times since the answer and one delay since step
    k - 1, to the unit k levels above the person's; none above the agency."""
    in_force = Bulletin.objects.in_force(now).filter(kind=Bulletin.Kind.ORDER)
    rows = (
        Response.objects.filter(
            kind=Response.Kind.CANNOT_COMPLY,
            resolved_at__isnull=True,
            unit__isnull=False,
            bulletin__in=in_force,
        )
        .annotate(last_step=Max("escalations__step"), last_at=Max("escalations__created_at"))
        .values_list("pk", "bulletin_id", "bulletin__priority", "created_at", "unit__path",
                     "last_step", "last_at")
    )  # fmt: skip
    due = []
    for pk, bulletin_id, priority, answered_at, path, last_step, last_at in rows:
        step, delay = (last_step or 0) + 1, delay_for(priority)
        keep = len(path) - step * Unit.steplen
        if step > settings.ESCALATION_MAX_STEPS or keep < Unit.steplen:
            continue
        if answered_at + step * delay > now or (last_at and last_at + delay > now):
            continue
        due.append((pk, bulletin_id, step, path[:keep]))
    return due


@transaction.atomic
def sweep_cannot_comply(now):
    """Write every escalation step of an unresolved cannot-comply answer due at `now`, each once
    (unique per answer and step), with its audit event and its message to the supervisors of
    the step's unit. Returns how many steps it wrote."""
    due = _due_steps(now)
    if not due:
        return 0
    units = dict(Unit.objects.filter(path__in={path for *_, path in due}).values_list("path", "pk"))
    ResponseEscalation.objects.bulk_create(
        [
            ResponseEscalation(response_id=pk, step=step, unit_id=units[path], created_at=now)
            for pk, _, step, path in due
        ],
        ignore_conflicts=True,
    )
    written = list(
        ResponseEscalation.objects.filter(created_at=now, response_id__in=[row[0] for row in due])
        .select_related("response__bulletin", "response__version")
    )  # fmt: skip
    for escalation in written:
        response = escalation.response
        audit.record("bulletin.cannot_comply_escalated", obj=response.bulletin,
                     version=response.version.number, now=now,
                     response=response.pk, step=escalation.step,
                     unit=escalation.unit_id)  # fmt: skip
        notifications.queue_event(
            response.bulletin, Event.CANNOT_COMPLY_ESCALATED, now=now,
            key=f"r{response.pk}s{escalation.step}",
            detail={"response": response.pk, "step": escalation.step, "unit": escalation.unit_id},
        )  # fmt: skip
    return len(written)

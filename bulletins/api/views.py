"""The JSON API, version 1. Access through `bulletins.permissions`, every change through the
services: the same rules as the pages, and the forms the pages validate with."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Value
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Path, Router, Status
from ninja.pagination import PageNumberPagination, paginate

from bulletins import permissions, quiz
from bulletins.api import schemas
from bulletins.api.auth import require_fresh_sign_in
from bulletins.api.errors import ERROR_STATUSES, Error, InvalidFields
from bulletins.forms import AmendForm, BulletinForm, LiftForm
from bulletins.models import Bulletin, Receipt, Response
from bulletins.services import authoring, clock, offline_ack, reading, responses, tracking
from portal.scope import scope_unit_ids

router = Router()
ERRORS = dict.fromkeys(ERROR_STATUSES, Error)
BulletinId = Path(..., ge=1, le=2**63 - 1)

# Form field -> API field, where they differ.
FIELD_NAMES = {
    "units": "audience",
    "units_only": "audience",
    "starts": "effective_at",
    "until_further_notice": "expires_at",
    "review_hours": "review_hours",
    "when": "lift_at",
    "__all__": None,
}


class Pages(PageNumberPagination):
    class Input(PageNumberPagination.Input):
        page: int = Field(1, ge=1, le=10_000)
        page_size: int | None = Field(None, ge=1, le=100)


def _check(form):
    if form.is_valid():
        return
    raise InvalidFields(
        [
            {"field": FIELD_NAMES.get(name, name), "message": error["message"]}
            for name, errors in form.errors.get_json_data().items()
            for error in errors
        ]
    )


def _detail(request, pk):
    user = request.user
    queryset = (
        permissions.visible_bulletins(user)
        .with_reader_state(user)
        .select_related("issued_by", "lifted_by")
        .prefetch_related("audience__unit", "versions__created_by")
    )
    bulletin = get_object_or_404(queryset, pk=pk)
    bulletin.is_reader = Bulletin.objects.filter(pk=pk).addressed_to(user).exists()
    return bulletin


def _managed_or_404(user, pk):
    return get_object_or_404(permissions.manageable_bulletins(user), pk=pk)


@router.get(
    "/bulletins",
    response={200: list[schemas.BulletinSummary], **ERRORS},
    summary="The bulletins in force for me, most urgent first",
    tags=["reading"],
)
@paginate(Pages)
def bulletins_in_force(request):
    user = request.user
    return (
        Bulletin.objects.in_force(timezone.now())
        .addressed_to(user)
        .with_reader_state(user)
        .annotate(is_reader=Value(True))
        .urgent_first()
    )


@router.get(
    "/bulletins/{bulletin_id}",
    response={200: schemas.BulletinDetail, **ERRORS},
    summary="A bulletin with its versions",
    tags=["reading"],
)
def bulletin_detail(request, bulletin_id: int = BulletinId):
    bulletin = _detail(request, bulletin_id)
    if bulletin.version:  # not a draft (version 0)
        reading.record_restricted_view(
            bulletin, user=request.user, request=request, version=bulletin.version, via="api"
        )
    return bulletin


@router.post(
    "/bulletins/{bulletin_id}/acknowledge",
    response={200: schemas.AcknowledgeOut, **ERRORS},
    summary="Acknowledge the version I was shown (idempotent)",
    tags=["reading"],
)
def bulletin_acknowledge(request, payload: schemas.AcknowledgeIn, bulletin_id: int = BulletinId):
    user, now = request.user, timezone.now()
    try:
        if payload.answers is None:
            recorded = reading.acknowledge(
                bulletin_id, user=user, version_number=payload.version, now=now, request=request
            )
        else:  # every attempt is recorded, whether or not the answers are right
            passed, recorded = reading.answer_and_acknowledge(
                bulletin_id, user=user, version_number=payload.version, answers=payload.answers,
                now=now, request=request,
            )  # fmt: skip
            if not passed:
                raise ValidationError({"answers": quiz.NOT_QUITE})
    except Bulletin.DoesNotExist:
        raise Http404 from None
    except ValidationError as error:
        if getattr(error, "code", None) in quiz.ANSWER_CODES:
            raise ValidationError({"answers": error.messages}) from None
        raise
    receipt = Receipt.objects.select_related("version").get(
        user=user, bulletin_id=bulletin_id, version__number=payload.version
    )
    return {"recorded": recorded, "acknowledgement": receipt}


@router.post(
    "/bulletins/{bulletin_id}/acknowledge-offline",
    response={200: schemas.AcknowledgeOut, 201: schemas.AcknowledgeOut, **ERRORS},
    summary="Send an acknowledgement made offline: 201 recorded, 200 sent before",
    description="The same rules as the bulletin page's: refused with 409 when the order "
    "changed materially (read it again), ended or has a check of understanding, and with "
    "422 (field device_time) when the device's time is too old or later than its arrival.",
    tags=["reading"],
)
def bulletin_acknowledge_offline(
    request, payload: schemas.OfflineAcknowledgeIn, bulletin_id: int = BulletinId
):
    if payload.device_time.tzinfo is None:
        raise ValidationError({"device_time": "Give the device's time with its UTC offset."})
    try:
        outcome = offline_ack.acknowledge_offline(
            bulletin_id, user=request.user, version_number=payload.version,
            client_id=payload.client_id, device_at=payload.device_time, now=timezone.now(),
            request=request,
        )  # fmt: skip
    except Bulletin.DoesNotExist:
        raise Http404 from None
    except ValidationError as error:
        if error.code in offline_ack.CONFLICTS:
            raise
        field = "client_id" if error.code == "client_id" else "device_time"
        field = "version" if error.code in ("version", "not_order") else field
        raise ValidationError({field: error.messages}) from None
    body = {"recorded": outcome.recorded, "acknowledgement": outcome.receipt}
    return Status(201 if outcome.recorded else 200, body)


@router.get(
    "/bulletins/{bulletin_id}/reasons",
    response={200: list[schemas.ReasonOut], **ERRORS},
    summary='The reasons I may give for "I cannot comply" to this bulletin',
    tags=["reading"],
)
def cannot_comply_reasons(request, bulletin_id: int = BulletinId):
    bulletin = _detail(request, bulletin_id)
    return list(responses.reasons(bulletin))


@router.post(
    "/bulletins/{bulletin_id}/responses",
    response={201: schemas.ResponseOut, **ERRORS},
    summary='My answer to an Order: "cannot comply" (with a reason) or "implemented"',
    tags=["reading"],
)
def bulletin_respond(request, payload: schemas.ResponseIn, bulletin_id: int = BulletinId):
    user, now = request.user, timezone.now()
    bulletin = get_object_or_404(Bulletin.objects.published(), pk=bulletin_id)
    try:
        if payload.kind == Response.Kind.CANNOT_COMPLY:
            answer = responses.cannot_comply(
                bulletin, user=user, reason=payload.reason_id, detail=payload.detail, now=now,
                request=request,
            )  # fmt: skip
        else:
            answer = responses.report_implemented(
                bulletin, user=user, note=payload.detail, now=now, request=request
            )
    except Bulletin.DoesNotExist:
        raise Http404 from None
    return Status(201, _responses().get(pk=answer.pk))


def _responses():
    return Response.objects.select_related("version", "user", "unit", "resolved_by")


@router.get(
    "/bulletins/{bulletin_id}/responses",
    response={200: list[schemas.ResponseOut], **ERRORS},
    summary='"Cannot comply" and "implemented" answers from my scope (supervisors)',
    tags=["authoring"],
)
@paginate(Pages)
def bulletin_responses(request, bulletin_id: int = BulletinId):
    user = request.user
    bulletin = get_object_or_404(permissions.trackable_bulletins(user), pk=bulletin_id)
    answers = _responses().filter(bulletin=bulletin).order_by("created_at", "id")
    if not user.is_superuser:
        answers = answers.filter(unit_id__in=scope_unit_ids(user))
    return answers


@router.get(
    "/acknowledgements",
    response={200: list[schemas.AcknowledgementOut], **ERRORS},
    summary="My acknowledgements, latest first",
    tags=["reading"],
)
@paginate(Pages)
def acknowledgement_history(request):
    return (
        Receipt.objects.filter(user=request.user, acknowledged_at__isnull=False)
        .select_related("version", "roll_call__sergeant", "recorded_by")
        .order_by("-acknowledged_at", "-id")
    )


@router.post(
    "/bulletins",
    response={201: schemas.BulletinDetail, **ERRORS},
    summary="Create a draft (supervisors, within their command)",
    tags=["authoring"],
)
def bulletin_create(request, payload: schemas.DraftIn):
    if not request.user.has_perm(permissions.AUTHOR):
        raise PermissionDenied
    now = timezone.now()
    form = BulletinForm(_draft_form_data(payload), user=request.user, now=now)
    _check(form)
    draft = authoring.save_draft(
        by=request.user, targets=form.cleaned_data["targets"], now=now, **form.draft_fields()
    )
    return Status(201, _detail(request, draft.pk))


def _draft_form_data(payload):
    data = payload.dict(exclude={"audience", "effective_at"})
    data["units"] = [row.unit_id for row in payload.audience if row.include_subtree]
    data["units_only"] = [row.unit_id for row in payload.audience if not row.include_subtree]
    data["starts"] = "at" if payload.effective_at else "now"
    data["effective_at"] = payload.effective_at
    return data


@router.post(
    "/bulletins/{bulletin_id}/publish",
    response={200: schemas.BulletinDetail, **ERRORS},
    summary="Publish a draft: now, or at its scheduled time (a session needs a recent sign-in)",
    tags=["authoring"],
)
def bulletin_publish(request, bulletin_id: int = BulletinId):
    require_fresh_sign_in(request)
    bulletin = _managed_or_404(request.user, bulletin_id)
    authoring.publish_bulletin(bulletin, by=request.user, now=timezone.now())
    return _detail(request, bulletin.pk)


@router.post(
    "/bulletins/{bulletin_id}/amend",
    response={200: schemas.BulletinDetail, **ERRORS},
    summary="Amend: a new version",
    tags=["authoring"],
)
def bulletin_amend(request, payload: schemas.AmendIn, bulletin_id: int = BulletinId):
    now = timezone.now()
    bulletin = _managed_or_404(request.user, bulletin_id)
    if bulletin.state_at(now) not in Bulletin.LIVE_STATUSES:
        raise ValidationError("Only a bulletin that is scheduled or in force can be amended.")
    form = AmendForm(_amend_form_data(payload, bulletin), bulletin=bulletin, now=now)
    _check(form)
    authoring.amend_bulletin(
        bulletin,
        by=request.user,
        now=now,
        reason=form.cleaned_data["reason"],
        is_material=form.cleaned_data["is_material"],
        **form.changes(),
    )
    return _detail(request, bulletin.pk)


def _amend_form_data(payload, bulletin):
    given = payload.dict(exclude_none=True)
    data = {name: getattr(bulletin, name) for name in ("title", "instruction", "body", "priority")}
    data["expires_at"] = None if payload.until_further_notice else bulletin.expires_at
    data["until_further_notice"] = bulletin.expires_at is None and "expires_at" not in given
    data.update(given)
    data["is_material"] = "yes" if payload.is_material else "no"
    return data


@router.post(
    "/bulletins/{bulletin_id}/lift",
    response={200: schemas.BulletinDetail, **ERRORS},
    summary="Lift: now, or at a set time (a session needs a recent sign-in)",
    tags=["authoring"],
)
def bulletin_lift(request, payload: schemas.LiftIn, bulletin_id: int = BulletinId):
    require_fresh_sign_in(request)
    now = timezone.now()
    bulletin = _managed_or_404(request.user, bulletin_id)
    data = {"when": "later" if payload.lift_at else "now", **payload.dict()}
    form = LiftForm(data, now=now)
    _check(form)
    reason, lift_at = form.cleaned_data["reason"], form.cleaned_data["lift_at"]
    if lift_at:
        clock.schedule_lift(bulletin, by=request.user, now=now, at=lift_at, reason=reason)
    else:
        authoring.lift_bulletin(bulletin, by=request.user, now=now, reason=reason)
    return _detail(request, bulletin.pk)


@router.get(
    "/bulletins/{bulletin_id}/coverage",
    response={200: schemas.CoverageOut, **ERRORS},
    summary="Who in my scope was told, opened and acknowledged (supervisors)",
    tags=["authoring"],
)
def bulletin_coverage(request, bulletin_id: int = BulletinId):
    user = request.user
    bulletin = get_object_or_404(permissions.trackable_bulletins(user), pk=bulletin_id)
    recipients = permissions.bulletin_recipients_in_scope(user, bulletin)
    return tracking.coverage_summary(bulletin, recipients)

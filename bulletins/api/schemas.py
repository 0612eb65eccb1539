"""What the API reads and writes. Field names follow the models."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from django.urls import reverse
from django.utils import timezone
from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict

from bulletins import cap, evidence, permissions
from bulletins.models import Bulletin, Response
from bulletins.services.reading import statement_for

MAX_ID = 2**31 - 1


def _plausible(moment):
    # Far-off years overflow date arithmetic (a review every N hours after it).
    if not 2000 <= moment.year <= 2999:
        raise ValueError("Give a date between the years 2000 and 2999.")
    return moment


Moment = Annotated[datetime, AfterValidator(_plausible)]


class Links(Schema):
    html: str
    cap: str | None = Field(None, description="The CAP 1.2 document of the current version.")
    cap_cancel: str | None = Field(None, description="The CAP Cancel message, once lifted.")


class BulletinSummary(Schema):
    id: int
    kind: Bulletin.Kind
    priority: Bulletin.Priority
    priority_label: str
    state: Bulletin.Status
    title: str
    instruction: str
    is_exercise: bool = Field(description="Training, not a real order: show it as EXERCISE.")
    effective_at: datetime | None
    expires_at: datetime | None = Field(description="Null: until further notice.")
    version: int
    ack_version: int = Field(description="Acknowledgements of this version or later count.")
    requires_acknowledgement: bool
    acknowledged_version: int | None = Field(description="The version I acknowledged last.")
    needs_my_acknowledgement: bool
    links: Links

    @staticmethod
    def resolve_priority_label(bulletin):
        return bulletin.get_priority_display()

    @staticmethod
    def resolve_state(bulletin):
        return bulletin.state_at(timezone.now())

    @staticmethod
    def resolve_acknowledged_version(bulletin):
        return getattr(bulletin, "my_ack_version", None)

    @staticmethod
    def resolve_needs_my_acknowledgement(bulletin):
        return (
            bool(getattr(bulletin, "is_reader", False))
            and bulletin.state_at(timezone.now()) == Bulletin.Status.IN_FORCE
            and bulletin.needs_reader_acknowledgement()
        )

    @staticmethod
    def resolve_links(bulletin, context):
        absolute = context["request"].build_absolute_uri
        lifted = bulletin.state_at(timezone.now()) == Bulletin.Status.LIFTED
        return {
            "html": absolute(reverse("bulletins:detail", kwargs={"pk": bulletin.pk})),
            "cap": absolute(cap.alert_url(bulletin.pk, bulletin.version))
            if bulletin.version
            else None,
            "cap_cancel": absolute(cap.cancel_url(bulletin.pk)) if lifted else None,
        }


class AudienceUnitOut(Schema):
    unit_id: int
    unit_name: str
    include_subtree: bool


class QuestionOut(Schema):
    question: str
    choices: list[str] = Field(description="Answer with a choice's index (from 0).")


class VersionOut(Schema):
    number: int
    title: str
    instruction: str
    body: str
    kind: Bulletin.Kind
    priority: Bulletin.Priority
    effective_at: datetime
    expires_at: datetime | None
    is_material: bool
    reason: str
    content_hash: str
    created_at: datetime
    created_by: str
    cap: str
    statement: str = Field(description="What acknowledging this version signs.")
    questions: list[QuestionOut] = Field(
        description="The check of understanding: acknowledge with `answers`, all right."
    )

    @staticmethod
    def resolve_created_by(version):
        return version.created_by.name

    @staticmethod
    def resolve_statement(version):
        return statement_for(version.statement, version.bulletin.agency_id)

    @staticmethod
    def resolve_questions(version):
        return [{"question": q["question"], "choices": q["choices"]} for q in version.questions]

    @staticmethod
    def resolve_cap(version, context):
        url = cap.alert_url(version.bulletin_id, version.number)
        return context["request"].build_absolute_uri(url)


class BulletinDetail(BulletinSummary):
    body: str
    body_html: str
    audience: list[AudienceUnitOut]
    member_classes: list[str]
    supervisors_only: bool
    issued_by: str
    published_at: datetime | None
    ended_at: datetime | None
    lifted_by: str | None
    lift_reason: str
    versions: list[VersionOut]
    supersedes: list[int] = Field(description="Bulletins it lifts when it takes effect.")
    superseded_by: list[int] = Field(description="Published bulletins that supersede it.")

    @staticmethod
    def resolve_audience(bulletin):
        return [
            {
                "unit_id": row.unit_id,
                "unit_name": row.unit.name,
                "include_subtree": row.include_subtree,
            }
            for row in bulletin.audience.all()
        ]

    @staticmethod
    def resolve_issued_by(bulletin):
        return bulletin.issued_by.name

    @staticmethod
    def resolve_lifted_by(bulletin):
        return bulletin.lifted_by.name if bulletin.lifted_by_id else None

    @staticmethod
    def resolve_versions(bulletin):
        return list(bulletin.versions.all())

    @staticmethod
    def resolve_supersedes(bulletin, context):
        # Only those the caller may see: an id names something.
        visible = permissions.visible_bulletins(context["request"].user)
        return list(
            visible.filter(superseded_by=bulletin.pk).order_by("pk").values_list("pk", flat=True)
        )

    @staticmethod
    def resolve_superseded_by(bulletin, context):
        visible = permissions.visible_bulletins(context["request"].user).published()
        return list(
            visible.filter(supersedes=bulletin.pk).order_by("pk").values_list("pk", flat=True)
        )


class AcknowledgeIn(Schema):
    version: int = Field(ge=1, le=MAX_ID, description="The version you were shown.")
    answers: list[Annotated[int, Field(ge=0, le=3)]] | None = Field(
        None,
        max_length=3,
        description="For a version with a check of understanding: the index of the chosen "
        "choice for each question, in order. Every attempt is recorded; wrong answers are "
        "refused (422, field answers) without saying which.",
    )


class OfflineAcknowledgeIn(Schema):
    """An acknowledgement made on the device while offline, sent once it is back online."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_ID, description="The version shown on the device.")
    client_id: UUID = Field(
        description="Made on the device for this acknowledgement; sending it again records "
        "nothing new and answers the same (200)."
    )
    device_time: datetime = Field(
        description="When Acknowledge was pressed, by the device's clock, with its offset. "
        "Refused (422) when older than OFFLINE_ACK_MAX_HOURS or later than its arrival."
    )


class AcknowledgementOut(Schema):
    bulletin_id: int
    title: str
    version: int
    acknowledged_at: datetime = Field(description="When the portal received it.")
    acknowledged_on_device_at: datetime | None = Field(
        None, description="Made offline: when Acknowledge was pressed, by the device's clock."
    )
    statement: str
    content_hash: str
    auth_method: str
    method: str = Field(
        description='How it was made: "" in the portal, "offline", "roll_call" (briefed at roll '
        'call, co-signed) or "paper" (signed the roll-call sheet, recorded by a sergeant).'
    )
    how: str = Field(description='The same in words, e.g. "signed on paper, recorded by ...".')

    @staticmethod
    def resolve_how(receipt):
        return evidence.how_label(receipt)

    @staticmethod
    def resolve_title(receipt):
        return receipt.version.title

    @staticmethod
    def resolve_version(receipt):
        return receipt.version.number


class AcknowledgeOut(Schema):
    recorded: bool = Field(description="False when it was already recorded (idempotent).")
    acknowledgement: AcknowledgementOut


class ResponseIn(Schema):
    """My own answer to an Order in force addressed to me. There is no person field: an answer
    is always the caller's (a request naming anyone, or any other field, is refused)."""

    model_config = ConfigDict(extra="forbid")

    kind: Response.Kind
    reason_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Cannot comply: one of the reasons (`/reasons`)."
    )
    detail: str = Field(
        "", max_length=2000, description='Details (required for the reason "Other"), or the '
        "optional note of an implemented report.",
    )  # fmt: skip


class ReasonOut(Schema):
    id: int
    label: str


class ResponseOut(Schema):
    id: int
    bulletin_id: int
    version: int
    kind: Response.Kind
    user_id: int
    name: str
    unit_id: int | None
    unit: str | None
    reason: str = Field(description="Cannot comply: the reason as the officer read it.")
    detail: str
    created_at: datetime
    statement_hash: str
    auth_method: str
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str

    @staticmethod
    def resolve_version(response):
        return response.version.number

    @staticmethod
    def resolve_name(response):
        return response.user.name

    @staticmethod
    def resolve_unit(response):
        return response.unit.name if response.unit_id else None

    @staticmethod
    def resolve_reason(response):
        return response.reason_label

    @staticmethod
    def resolve_resolved_by(response):
        return response.resolved_by.name if response.resolved_by_id else None


class AudienceIn(Schema):
    unit_id: int = Field(ge=1, le=MAX_ID)
    include_subtree: bool = True


class DraftIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    instruction: str = Field(min_length=1, max_length=300)
    body: str = Field("", max_length=20000)
    kind: Bulletin.Kind = Bulletin.Kind.ORDER
    priority: Bulletin.Priority = Bulletin.Priority.PRIORITY
    audience: list[AudienceIn] = Field(min_length=1, max_length=500)
    to_sworn: bool = True
    to_auxiliary: bool = True
    to_civilian: bool = True
    supervisors_only: bool = False
    is_exercise: bool = Field(False, description="Exercise - training, not a real order.")
    effective_at: Moment | None = Field(None, description="Null: when it is published.")
    expires_at: Moment | None = Field(None, description="Required unless until further notice.")
    until_further_notice: bool = False
    review_hours: int = Field(72, ge=1, le=24 * 30)
    supersedes: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        [],
        max_length=50,
        description="Bulletins in force or scheduled, yours to lift, that it replaces: lifted "
        "when it takes effect.",
    )


class AmendIn(Schema):
    """Leave a field out to keep it as it is."""

    reason: str = Field(min_length=1, max_length=1000)
    is_material: bool = Field(
        description="True: everyone must acknowledge again. False (a correction): only the end "
        "time, the review interval and the spelling of at most 3 words may change, none of them "
        "a number or a negation; anything else is refused (422)."
    )
    title: str | None = Field(None, min_length=1, max_length=200)
    instruction: str | None = Field(None, min_length=1, max_length=300)
    body: str | None = Field(None, max_length=20000)
    priority: Bulletin.Priority | None = None
    expires_at: Moment | None = None
    until_further_notice: bool | None = None


class LiftIn(Schema):
    reason: str = Field(min_length=1, max_length=1000)
    lift_at: Moment | None = Field(None, description="Null: lift now.")


class CoverageOut(Schema):
    """For an Order, outstanding and percent count acknowledgements, and whoever answered
    "cannot comply" without acknowledging is counted there, not as outstanding (acknowledged +
    cannot_comply + outstanding = audience); for a bulletin that asks only to be read
    (Advisory, Information, Intelligence) they count who opened it. `implemented` of
    `implemented_required`: people, or units when one report per unit is asked."""

    audience: int
    opened: int
    acknowledged: int
    cannot_comply: int
    cannot_comply_open: int
    cannot_comply_resolved: int
    outstanding: int
    percent: int
    earlier_version_only: int
    on_leave: int
    within_15: int
    within_30: int
    within_60: int
    implemented_from: str
    implemented: int
    implemented_required: int

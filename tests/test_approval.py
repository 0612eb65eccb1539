"""A second pair of eyes (issue 21): the approval rule, who approves, Submit / Approve / Send
back, emergency publication and its review, and material amendments that need approval again."""

import threading
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from bulletins import notifications
from bulletins.models import ApprovalStep, Bulletin, NotificationEvent, Receipt
from bulletins.services import approval, authoring, clock, reading
from portal.models import AuditEvent, User
from tests.factories import UserFactory, draft_bulletin, make_unit, published_bulletin

pytestmark = pytest.mark.django_db

Action = ApprovalStep.Action
Event = NotificationEvent.Event


@pytest.fixture
def borough_draft(sergeant, manhattan, commander):
    """The sergeant of the 17th writes to the whole borough: beyond his command."""
    return draft_bulletin(sergeant, manhattan, title="Manhattan South: guard the entrances")


def submitted(draft, by, now=None):
    return approval.submit_for_approval(draft, by=by, now=now or timezone.now())


def state(bulletin):
    return Bulletin.objects.get(pk=bulletin.pk)


def steps(bulletin):
    return list(bulletin.approval_steps.order_by("at", "pk").values_list("action", flat=True))


def addressed(bulletin, event):
    outbox = NotificationEvent.objects.get(bulletin=bulletin, event=event)
    return set(notifications.addressees(outbox).values_list("email", flat=True))


# The rule


def test_a_sergeant_writing_to_his_own_precinct_publishes_alone(sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17)

    assert not approval.approval_needed(draft, sergeant)
    assert authoring.publish_bulletin(draft, by=sergeant, now=timezone.now()).status == "in_force"


def test_beyond_his_command_or_agency_wide_needs_approval(
    sergeant, admin, agency, manhattan, precinct17
):
    assert approval.approval_needed(draft_bulletin(sergeant, manhattan), sergeant)
    assert approval.approval_needed(draft_bulletin(admin, agency), admin)
    assert not approval.approval_needed(draft_bulletin(admin, manhattan), admin)
    assert not approval.approval_needed(draft_bulletin(admin, agency, subtree=False), admin)


def test_the_setting_asks_it_of_all_or_none(settings, sergeant, admin, agency, precinct17):
    own, wide = draft_bulletin(sergeant, precinct17), draft_bulletin(admin, agency)

    settings.APPROVAL_REQUIRED_FOR = "all"
    assert approval.approval_needed(own, sergeant)
    settings.APPROVAL_REQUIRED_FOR = "none"
    assert not approval.approval_needed(wide, admin)


def test_exercises_follow_their_own_setting(settings, admin, agency):
    drill = draft_bulletin(admin, agency, is_exercise=True)
    real = draft_bulletin(admin, agency)

    settings.EXERCISE_APPROVAL = "none"

    assert not approval.approval_needed(drill, admin)
    assert approval.approval_needed(real, admin)
    settings.EXERCISE_APPROVAL = "same"
    assert approval.approval_needed(drill, admin)


def test_a_sergeant_may_draft_beyond_his_command_but_not_beyond_his_agency(sergeant, manhattan):
    other_agency = make_unit("Nassau County Police Department")

    draft = draft_bulletin(sergeant, manhattan)
    with pytest.raises(ValidationError, match="Outside your command"):
        draft_bulletin(sergeant, other_agency, title="Elsewhere")

    assert draft.status == Bulletin.Status.DRAFT
    assert not Bulletin.objects.filter(title="Elsewhere").exists()


def test_approvers_cover_the_whole_audience_and_never_the_author(
    borough_draft, sergeant, commander, admin, sergeant75, officer
):
    inactive = UserFactory(unit=commander.unit, role=User.Role.SUPERVISOR, is_active=False)

    emails = set(approval.approvers(borough_draft).values_list("email", flat=True))

    assert {commander.email, admin.email} <= emails
    assert not emails & {sergeant.email, sergeant75.email, officer.email, inactive.email}


# Publishing refuses what needs approval: in the service, not only on the page


def test_publishing_alone_is_refused_where_approval_is_needed(borough_draft, sergeant):
    with pytest.raises(ValidationError, match="needs a second person's approval"):
        authoring.publish_bulletin(borough_draft, by=sergeant, now=timezone.now())

    assert state(borough_draft).status == Bulletin.Status.DRAFT
    assert not borough_draft.versions.exists()


def test_the_publish_button_refuses_and_the_preview_offers_submit(client, borough_draft, sergeant):
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:publish", args=[borough_draft.pk]), follow=True)
    preview = client.get(reverse("bulletins:preview", args=[borough_draft.pk])).content.decode()

    assert "needs a second person" in response.content.decode()
    assert state(borough_draft).status == Bulletin.Status.DRAFT
    assert "Submit for approval" in preview
    assert ">Publish</button>" not in preview
    assert "Publish now in an emergency" in preview


def test_the_preview_offers_publish_where_no_approval_is_needed(client, sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    preview = client.get(reverse("bulletins:preview", args=[draft.pk])).content.decode()

    assert ">Publish</button>" in preview
    assert "Submit for approval" not in preview


# Submit, approve, send back


def test_submitting_tells_the_approvers(
    borough_draft, sergeant, commander, admin, sergeant75, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        submitted(borough_draft, sergeant)

    bulletin = state(borough_draft)
    assert bulletin.status == Bulletin.Status.DRAFT
    assert bulletin.approval == Bulletin.Approval.AWAITING
    assert steps(bulletin) == [Action.SUBMITTED]
    assert {commander.email, admin.email} <= addressed(bulletin, Event.APPROVAL_REQUESTED)
    assert sergeant.email not in addressed(bulletin, Event.APPROVAL_REQUESTED)
    assert sergeant75.email not in addressed(bulletin, Event.APPROVAL_REQUESTED)
    assert len(callbacks) >= 1
    assert AuditEvent.objects.filter(action="bulletin.submit_for_approval").count() == 1


def test_submitting_what_needs_no_approval_or_twice_is_refused(sergeant, precinct17, borough_draft):
    with pytest.raises(ValidationError, match="does not need approval"):
        submitted(draft_bulletin(sergeant, precinct17), sergeant)
    submitted(borough_draft, sergeant)
    with pytest.raises(ValidationError, match="already awaiting"):
        submitted(borough_draft, sergeant)

    assert steps(borough_draft) == [Action.SUBMITTED]


def test_approving_publishes_with_the_approver_named_and_counted_as_acknowledged(
    client, borough_draft, sergeant, commander, officer
):
    submitted(borough_draft, sergeant)
    now = timezone.now()

    bulletin = approval.approve(borough_draft, by=commander, now=now)

    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert (bulletin.approval, bulletin.approved_by, bulletin.approved_at) == (
        Bulletin.Approval.APPROVED, commander, now,
    )  # fmt: skip
    assert bulletin.versions.get().approved_by == commander
    assert bulletin.versions.get().created_by == sergeant
    assert steps(bulletin) == [Action.SUBMITTED, Action.APPROVED]
    receipt = Receipt.objects.get(bulletin=bulletin, user=commander)
    assert receipt.statement == approval.APPROVED_STATEMENT
    assert addressed(bulletin, Event.APPROVED) == {sergeant.email}
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    assert "Written by Sgt. Dan Kowalski, approved by Insp. Ray Donovan" in page
    client.force_login(officer)
    assert bulletin.pk in [b.pk for b in client.get(reverse("bulletins:feed")).context["bulletins"]]


def test_the_approver_of_a_large_audience_counts_as_acknowledged_once_it_is_told(
    settings, borough_draft, sergeant, commander
):
    """A large audience is told after commit: the approver's receipt follows the rows."""
    settings.FAN_OUT_INLINE_LIMIT = 1
    submitted(borough_draft, sergeant)
    bulletin = approval.approve(borough_draft, by=commander, now=timezone.now())
    assert bulletin.recipients_written_at is None

    authoring.write_recipients(bulletin.pk, now=timezone.now())

    receipts = Receipt.objects.filter(bulletin=bulletin, acknowledged_at__isnull=False)
    by_person = dict(receipts.values_list("user__email", "statement"))
    assert by_person[commander.email] == approval.APPROVED_STATEMENT
    assert by_person[sergeant.email] == reading.ISSUED_STATEMENT
    told = bulletin.recipients.get(user=commander)
    assert told.acknowledged_version == bulletin.version


def test_approving_a_draft_with_a_start_time_schedules_it(sergeant, manhattan, commander):
    later = timezone.now() + timedelta(hours=2)
    draft = draft_bulletin(sergeant, manhattan, effective_at=later)
    submitted(draft, sergeant)

    bulletin = approval.approve(draft, by=commander, now=timezone.now())

    assert bulletin.status == Bulletin.Status.SCHEDULED
    assert bulletin.effective_at == later


def test_the_author_never_approves_his_own(client, borough_draft, sergeant):
    submitted(borough_draft, sergeant)
    client.force_login(sergeant)

    with pytest.raises(PermissionDenied):
        approval.approve(borough_draft, by=sergeant, now=timezone.now())
    response = client.post(reverse("bulletins:approve", args=[borough_draft.pk]))

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert state(borough_draft).status == Bulletin.Status.DRAFT


def test_an_approver_outside_the_audience_cannot_approve(
    client, borough_draft, sergeant, sergeant75
):
    submitted(borough_draft, sergeant)
    client.force_login(sergeant75)

    with pytest.raises(PermissionDenied):
        approval.approve(borough_draft, by=sergeant75, now=timezone.now())
    response = client.post(reverse("bulletins:approve", args=[borough_draft.pk]))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert state(borough_draft).status == Bulletin.Status.DRAFT


def test_approving_twice_is_refused_with_who_approved(borough_draft, sergeant, commander, admin):
    submitted(borough_draft, sergeant)
    approval.approve(borough_draft, by=commander, now=timezone.now())

    with pytest.raises(ValidationError, match="Already approved by Insp. Ray Donovan"):
        approval.approve(borough_draft, by=admin, now=timezone.now())

    assert state(borough_draft).versions.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_approvers_clicking_at_once_publish_it_once(sergeant, manhattan, commander, admin):
    draft = draft_bulletin(sergeant, manhattan, title="At once")
    submitted(draft, sergeant)
    barrier, outcomes = threading.Barrier(2), {}

    def click(person):
        try:
            barrier.wait(timeout=10)
            approval.approve(draft, by=person, now=timezone.now())
            outcomes[person.email] = "approved"
        except ValidationError as error:
            outcomes[person.email] = " ".join(error.messages)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(p,)) for p in (commander, admin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    first = state(draft).approved_by
    assert sorted(outcomes.values()) == [f"Already approved by {first.name}.", "approved"]
    assert state(draft).versions.count() == 1
    assert AuditEvent.objects.filter(action="bulletin.publish").count() == 1
    assert steps(draft) == [Action.SUBMITTED, Action.APPROVED]


def test_send_back_needs_a_comment_and_tells_the_author(client, borough_draft, sergeant, commander):
    submitted(borough_draft, sergeant)
    client.force_login(commander)
    url = reverse("bulletins:send_back", args=[borough_draft.pk])

    empty = client.post(url, {"comment": "  "})
    assert empty.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Say what must change" in empty.content.decode()
    assert state(borough_draft).approval == Bulletin.Approval.AWAITING

    response = client.post(url, {"comment": "Say which entrances: the side doors too."})

    assert response.status_code == HTTPStatus.FOUND
    bulletin = state(borough_draft)
    assert (bulletin.status, bulletin.approval) == ("draft", Bulletin.Approval.SENT_BACK)
    assert addressed(bulletin, Event.SENT_BACK) == {sergeant.email}
    client.force_login(sergeant)
    preview = client.get(reverse("bulletins:preview", args=[bulletin.pk])).content.decode()
    assert "Sent back by Insp. Ray Donovan" in preview
    assert "the side doors too" in preview


def test_sent_back_the_author_edits_and_submits_again(
    borough_draft, sergeant, commander, manhattan
):
    submitted(borough_draft, sergeant)
    approval.send_back(borough_draft, by=commander, now=timezone.now(), comment="Side doors.")
    draft_bulletin(sergeant, manhattan, title="Manhattan South: guard every door")  # unrelated
    authoring.save_draft(
        by=sergeant, targets=[(manhattan, True)], now=timezone.now(), bulletin=borough_draft,
        title="Manhattan South: guard every entrance and side door",
        instruction="Armed officer at each entrance; side doors locked.",
    )  # fmt: skip

    submitted(borough_draft, sergeant)
    bulletin = approval.approve(borough_draft, by=commander, now=timezone.now())

    assert bulletin.title == "Manhattan South: guard every entrance and side door"
    assert steps(bulletin) == [Action.SUBMITTED, Action.SENT_BACK, Action.SUBMITTED,
                               Action.APPROVED]  # fmt: skip


def test_editing_a_draft_awaiting_approval_withdraws_it(borough_draft, sergeant, manhattan):
    submitted(borough_draft, sergeant)

    authoring.save_draft(
        by=sergeant, targets=[(manhattan, True)], now=timezone.now(), bulletin=borough_draft,
        title="Changed after submitting",
    )  # fmt: skip

    assert state(borough_draft).approval == Bulletin.Approval.NOT_NEEDED
    assert steps(borough_draft) == [Action.SUBMITTED, Action.WITHDRAWN]


@pytest.mark.usefixtures("own_cache_keys")
def test_the_navigation_counts_what_awaits_and_the_kept_feed_follows(
    client, borough_draft, sergeant, commander
):
    client.force_login(commander)
    before = client.get(reverse("bulletins:feed")).content.decode()

    submitted(borough_draft, sergeant)
    waiting = client.get(reverse("bulletins:feed")).content.decode()
    listed = client.get(reverse("bulletins:approvals")).content.decode()
    preview = client.get(reverse("bulletins:preview", args=[borough_draft.pk])).content.decode()
    approval.approve(borough_draft, by=commander, now=timezone.now())
    after = client.get(reverse("bulletins:feed")).content.decode()

    assert "Awaiting approval</a>" in before
    assert 'class="count-badge">1<' in waiting
    assert 'class="count-badge">1<' in preview
    assert "Manhattan South: guard the entrances" in listed
    assert "count-badge" not in after


def test_the_awaiting_list_keeps_to_a_few_queries(
    client, django_assert_max_num_queries, sergeant, manhattan, commander
):
    for number in range(8):
        submitted(draft_bulletin(sergeant, manhattan, title=f"Order {number}"), sergeant)
    client.force_login(commander)

    with django_assert_max_num_queries(14):
        response = client.get(reverse("bulletins:approvals"))

    assert response.content.decode().count("to approve</a>") == 8


# Emergency publication and its review


def test_emergency_publication_needs_a_reason_and_goes_out_at_once(
    client, borough_draft, sergeant, commander, officer
):
    client.force_login(sergeant)
    url = reverse("bulletins:emergency", args=[borough_draft.pk])

    empty = client.post(url, {"reason": ""})
    assert empty.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert state(borough_draft).status == Bulletin.Status.DRAFT

    before = timezone.now()
    client.post(url, {"reason": "Shots fired at a patrol car on 51st Street."})

    bulletin = state(borough_draft)
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert bulletin.approval == Bulletin.Approval.EMERGENCY
    assert bulletin.emergency_reason == "Shots fired at a patrol car on 51st Street."
    due = bulletin.emergency_review_due_at - bulletin.published_at
    assert due == timedelta(minutes=60) and bulletin.published_at >= before
    assert steps(bulletin) == [Action.EMERGENCY]
    assert commander.email in addressed(bulletin, Event.EMERGENCY)
    client.force_login(commander)
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    assert "Published in an emergency by Sgt. Dan Kowalski" in page
    assert "awaiting review" in page and ">Confirm</button>" in page
    listed = client.get(reverse("bulletins:approvals")).content.decode()
    assert "awaiting review" in listed
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    assert ">Confirm</button>" not in page
    assert "Published in an emergency" not in page  # shown to supervisors


def test_an_emergency_where_no_approval_is_needed_is_refused(sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17)

    with pytest.raises(ValidationError, match="does not need approval"):
        approval.publish_in_emergency(draft, by=sergeant, now=timezone.now(), reason="Now.")

    assert state(draft).status == Bulletin.Status.DRAFT


def test_an_approver_confirms_an_emergency_once(client, borough_draft, sergeant, commander):
    approval.publish_in_emergency(borough_draft, by=sergeant, now=timezone.now(), reason="Now.")
    client.force_login(sergeant)
    assert client.post(reverse("bulletins:confirm", args=[borough_draft.pk])).status_code == 403
    client.force_login(commander)

    client.post(reverse("bulletins:confirm", args=[borough_draft.pk]))

    bulletin = state(borough_draft)
    assert bulletin.approval == Bulletin.Approval.CONFIRMED
    assert bulletin.approved_by == commander and bulletin.emergency_review_due_at is None
    with pytest.raises(ValidationError, match="already been reviewed"):
        approval.confirm_emergency(bulletin, by=commander, now=timezone.now())
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    assert "(Now.); confirmed by Insp. Ray Donovan" in page


def test_an_approver_lifts_an_emergency_with_a_reason(client, borough_draft, sergeant, commander):
    approval.publish_in_emergency(borough_draft, by=sergeant, now=timezone.now(), reason="Now.")
    client.force_login(commander)
    url = reverse("bulletins:lift_on_review", args=[borough_draft.pk])

    assert client.post(url, {"reason": ""}).status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    client.post(url, {"reason": "Not borough-wide: the 17th only."})

    bulletin = state(borough_draft)
    assert bulletin.status == Bulletin.Status.LIFTED
    assert bulletin.lift_reason == "Not borough-wide: the 17th only."
    assert steps(bulletin) == [Action.EMERGENCY, Action.LIFTED]
    assert bulletin.emergency_review_due_at is None


def _late_units(bulletin):
    rows = NotificationEvent.objects.filter(bulletin=bulletin, event=Event.EMERGENCY_LATE)
    return [row.detail["unit"] for row in rows.order_by("key")]


def test_an_emergency_not_reviewed_escalates_step_by_step(
    settings, sergeant, squad17, precinct17, manhattan, agency
):
    settings.APPROVAL_REQUIRED_FOR = "all"
    t0 = timezone.now()
    draft = draft_bulletin(sergeant, squad17)
    bulletin = approval.publish_in_emergency(draft, by=sergeant, now=t0, reason="Now.")
    due = bulletin.emergency_review_due_at

    clock.sweep(due - timedelta(seconds=1))
    assert _late_units(bulletin) == []
    clock.sweep(due)
    clock.sweep(due + timedelta(minutes=1))
    assert _late_units(bulletin) == [precinct17.pk]
    clock.sweep(due + timedelta(minutes=15))
    clock.sweep(due + timedelta(minutes=90))
    clock.sweep(due + timedelta(minutes=91))

    assert _late_units(bulletin) == [precinct17.pk, manhattan.pk, agency.pk]
    assert AuditEvent.objects.filter(action="bulletin.emergency_late").count() == 3


def test_a_reviewed_emergency_never_escalates(sergeant, manhattan, commander, admin):
    t0 = timezone.now()
    bulletin = approval.publish_in_emergency(
        draft_bulletin(sergeant, manhattan), by=sergeant, now=t0, reason="Now."
    )
    approval.confirm_emergency(bulletin, by=commander, now=t0 + timedelta(minutes=30))

    clock.sweep(t0 + timedelta(hours=3))

    assert _late_units(bulletin) == []


def test_the_agency_admins_hear_of_a_late_borough_emergency(sergeant, manhattan, admin):
    t0 = timezone.now()
    bulletin = approval.publish_in_emergency(
        draft_bulletin(sergeant, manhattan), by=sergeant, now=t0, reason="Now."
    )

    clock.sweep(bulletin.emergency_review_due_at)

    assert admin.email in addressed(bulletin, Event.EMERGENCY_LATE)


# Material amendments need approval again; corrections and lifting never do


@pytest.fixture
def approved_order(borough_draft, sergeant, commander):
    submitted(borough_draft, sergeant)
    return approval.approve(borough_draft, by=commander, now=timezone.now())


def _amend_form(bulletin, **changes):
    return {
        "title": bulletin.title,
        "instruction": bulletin.instruction,
        "body": bulletin.body,
        "priority": str(bulletin.priority),
        "until_further_notice": "on",
        "is_material": "yes",
        "reason": "Side doors too.",
        **changes,
    }


def test_a_material_amendment_waits_for_approval(client, approved_order, sergeant, commander):
    client.force_login(sergeant)
    instruction = "Armed officer at every entrance, side doors locked."

    client.post(
        reverse("bulletins:amend", args=[approved_order.pk]),
        _amend_form(approved_order, instruction=instruction),
    )

    waiting = state(approved_order)
    assert (waiting.version, waiting.approval) == (1, Bulletin.Approval.AWAITING)
    assert waiting.instruction != instruction
    assert approval.pending_amendment(waiting).proposal["fields"]["instruction"] == instruction
    with pytest.raises(PermissionDenied):
        approval.approve(waiting, by=sergeant, now=timezone.now())
    client.force_login(commander)
    page = client.get(reverse("bulletins:detail", args=[waiting.pk])).content.decode()
    assert "An amendment awaits approval" in page

    client.post(reverse("bulletins:approve", args=[waiting.pk]))

    amended = state(approved_order)
    assert (amended.version, amended.ack_version, amended.instruction) == (2, 2, instruction)
    assert amended.versions.get(number=2).approved_by == commander
    assert amended.versions.get(number=2).created_by == sergeant
    assert amended.approval == Bulletin.Approval.APPROVED


def test_the_service_refuses_a_material_amendment_without_approval(approved_order, sergeant):
    with pytest.raises(ValidationError, match="needs a second person"):
        authoring.amend_bulletin(
            approved_order, by=sergeant, now=timezone.now(), reason="Tighter.",
            is_material=True, instruction="Something else entirely.",
        )  # fmt: skip

    assert state(approved_order).version == 1


def test_a_material_amendment_in_an_emergency_is_made_at_once(client, approved_order, sergeant):
    client.force_login(sergeant)

    client.post(
        reverse("bulletins:amend", args=[approved_order.pk]),
        _amend_form(approved_order, instruction="Lock every door now.",
                    emergency_reason="A second attack."),
    )  # fmt: skip

    amended = state(approved_order)
    assert (amended.version, amended.instruction) == (2, "Lock every door now.")
    assert amended.approval == Bulletin.Approval.EMERGENCY
    assert amended.emergency_reason == "A second attack."


def test_a_correction_and_a_lift_need_no_approval(client, approved_order, sergeant):
    client.force_login(sergeant)

    client.post(
        reverse("bulletins:amend", args=[approved_order.pk]),
        _amend_form(approved_order, title=approved_order.title + ".", is_material="no"),
    )
    corrected = state(approved_order)
    authoring.lift_bulletin(corrected, by=sergeant, now=timezone.now(), reason="Threat over.")

    assert corrected.version == 2
    assert state(approved_order).status == Bulletin.Status.LIFTED


def test_the_issuer_keeps_his_order_beyond_his_command_but_not_another_sergeant(
    approved_order, sergeant, sergeant75
):
    from bulletins import permissions

    assert permissions.can_manage(sergeant, approved_order)
    assert permissions.manageable_bulletins(sergeant).filter(pk=approved_order.pk).exists()
    assert not permissions.can_manage(sergeant75, approved_order)


def test_the_factory_approves_agency_wide_orders_without_changing_the_audience(admin, agency):
    bulletin = published_bulletin(admin, agency)

    assert bulletin.approved_by.is_superuser and bulletin.approved_by.unit is None
    assert not bulletin.recipients.filter(user=bulletin.approved_by).exists()


def test_the_evidence_record_names_the_author_and_the_approver(
    client, officer, approved_order, commander
):
    client.force_login(commander)

    page = client.get(reverse("bulletins:evidence", args=[approved_order.pk, officer.pk]))

    text = page.content.decode()
    assert "Written by Sgt. Dan Kowalski, approved by Insp. Ray Donovan at" in text
    assert "by Sgt. Dan Kowalski, approved by Insp. Ray Donovan</p>" in text

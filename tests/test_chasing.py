from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from bulletins import notifications
from bulletins.models import Notification, NotificationEvent, Reminder
from bulletins.services import authoring, chasing, clock, reading
from portal.models import User
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def steps_of(person, bulletin):
    return list(
        Reminder.objects.filter(recipient__user=person, recipient__bulletin=bulletin)
        .order_by("step")
        .values_list("step", "unit__name")
    )


def emailed(event):
    outboxes = NotificationEvent.objects.filter(event=event)
    for outbox in outboxes:
        notifications.fan_out(outbox)
    return sorted(
        Notification.objects.filter(event__in=outboxes).values_list("user__email", flat=True)
    )


@pytest.fixture
def squad_officer(squad17):
    return UserFactory(email="squad@agency.test", name="Squad Officer", unit=squad17)


def test_immediate_order_reminds_then_escalates_up_the_chain_once_each(
    admin, agency, sergeant, squad17, squad_officer
):
    squad_sergeant = UserFactory(email="squadsgt@agency.test", unit=squad17, role="supervisor")
    now = timezone.now()
    order = published_bulletin(admin, squad17, now=now, priority=1)

    for minutes in (14, 15, 16, 29, 30, 45, 60, 75, 90, 200):
        chasing.chase(now + minutes * MINUTE)

    assert steps_of(squad_officer, order) == [
        (0, None),
        (1, "17th Precinct Anti-Crime"),
        (2, "17th Precinct"),
        (3, "Manhattan South"),
        (4, "Metro Police Department"),
    ]
    assert "squad@agency.test" in emailed("reminder")
    escalated = emailed("escalation")
    assert escalated.count(squad_sergeant.email) == 1
    assert escalated.count(sergeant.email) == 1
    assert escalated.count(admin.email) == 1


def test_each_step_waits_one_delay_after_the_previous(admin, precinct17, officer):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=2)

    chasing.chase(now + 239 * MINUTE)
    before = steps_of(officer, order)
    chasing.chase(now + 240 * MINUTE)
    chasing.chase(now + 241 * MINUTE)
    after_first = steps_of(officer, order)
    chasing.chase(now + 480 * MINUTE)

    assert before == []
    assert after_first == [(0, None)]
    assert [step for step, _ in steps_of(officer, order)] == [0, 1]


def test_a_late_sweep_catches_up_one_step_per_delay_not_all_at_once(admin, precinct17, officer):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=1)

    chasing.chase(now + timedelta(days=2))

    assert steps_of(officer, order) == [(0, None)]


def test_acknowledging_stops_the_chase(admin, precinct17, officer):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=1)
    chasing.chase(now + 15 * MINUTE)

    reading.acknowledge(order.pk, user=officer, version_number=1, now=now + 20 * MINUTE)
    chasing.chase(now + 30 * MINUTE)
    chasing.chase(now + 60 * MINUTE)

    assert steps_of(officer, order) == [(0, None)]


def test_ending_or_lifting_stops_the_chase(admin, precinct17, officer):
    now = timezone.now()
    ending = published_bulletin(admin, precinct17, now=now, priority=1,
                                expires_at=now + 20 * MINUTE)  # fmt: skip
    lifted = published_bulletin(admin, precinct17, now=now, priority=1)
    chasing.chase(now + 15 * MINUTE)

    authoring.lift_bulletin(lifted, by=admin, now=now + 16 * MINUTE, reason="Over")
    clock.sweep(now + 21 * MINUTE)
    chasing.chase(now + 30 * MINUTE)
    chasing.chase(now + 45 * MINUTE)

    assert steps_of(officer, ending) == [(0, None)]
    assert steps_of(officer, lifted) == [(0, None)]


def test_material_amendment_restarts_the_chase_for_the_new_version(admin, precinct17, officer):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=1)
    reading.acknowledge(order.pk, user=officer, version_number=1, now=now + MINUTE)
    authoring.amend_bulletin(order, by=admin, now=now + 60 * MINUTE, reason="Auxiliaries too",
                             is_material=True, title="All members paired")  # fmt: skip

    chasing.chase(now + 74 * MINUTE)
    early = steps_of(officer, order)
    chasing.chase(now + 75 * MINUTE)

    assert early == []
    assert list(
        Reminder.objects.filter(recipient__user=officer).values_list("version", "step")
    ) == [(2, 0)]


def test_members_on_leave_are_not_reminded(admin, precinct17, officer, auxiliary):
    User.objects.filter(pk=officer.pk).update(is_on_leave=True)
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=1)

    chasing.chase(now + 15 * MINUTE)
    chasing.chase(now + 30 * MINUTE)

    assert steps_of(officer, order) == []
    assert [step for step, _ in steps_of(auxiliary, order)] == [0, 1]


def test_advisories_are_not_chased(admin, precinct17, officer):
    now = timezone.now()
    published_bulletin(admin, precinct17, now=now, kind="advisory", priority=1)

    chasing.chase(now + timedelta(hours=5))

    assert not Reminder.objects.exists()


def test_manual_reminder_reaches_the_outstanding_in_scope_once_per_15_minutes(
    admin, agency, sergeant, officer, outsider
):
    now = timezone.now()
    order = published_bulletin(admin, agency, now=now, priority=3)
    reading.acknowledge(order.pk, user=sergeant, version_number=1, now=now)

    sent = chasing.send_manual_reminder(order, by=admin, now=now + MINUTE)
    with pytest.raises(ValidationError, match="You can send the next reminder at"):
        chasing.send_manual_reminder(order, by=admin, now=now + 11 * MINUTE)
    again = chasing.send_manual_reminder(order, by=admin, now=now + 16 * MINUTE)

    assert sent == again == 2  # the admin issued it: acknowledged, not reminded
    reminded = set(
        Reminder.objects.filter(is_manual=True).values_list("recipient__user__email", flat=True)
    )
    assert reminded == {officer.email, outsider.email}
    assert emailed("reminder").count(officer.email) == 2


def test_anyone_who_follows_the_coverage_may_remind_their_own_people_of_an_agency_order(
    admin, agency, sergeant, officer, outsider, precinct75
):
    """A sergeant reminds his precinct of an agency-wide order he did not issue; the 15-minute
    limit is per bulletin and per scope: the sergeants of two precincts each remind their own,
    and the admin the whole agency, but one scope is not reminded twice within 15 minutes."""
    brooklyn_sergeant = UserFactory(unit=precinct75, role=User.Role.SUPERVISOR)
    now = timezone.now().replace(microsecond=0)  # the audit trail keeps milliseconds
    order = published_bulletin(admin, agency, now=now, priority=3)

    by_sergeant = chasing.send_manual_reminder(order, by=sergeant, now=now + MINUTE)
    by_brooklyn = chasing.send_manual_reminder(order, by=brooklyn_sergeant, now=now + 2 * MINUTE)
    by_admin = chasing.send_manual_reminder(order, by=admin, now=now + 3 * MINUTE)
    opens_at = timezone.localtime(now + 16 * MINUTE)
    with pytest.raises(ValidationError, match=f"next reminder at {opens_at:%H:%M}"):
        chasing.send_manual_reminder(order, by=sergeant, now=now + 10 * MINUTE)
    with pytest.raises(PermissionDenied):
        chasing.send_manual_reminder(order, by=officer, now=now + 20 * MINUTE)

    assert (by_sergeant, by_brooklyn, by_admin) == (2, 2, 4)
    reminded_by = {
        sender: sorted(
            Reminder.objects.filter(is_manual=True, sent_by=sender).values_list(
                "recipient__user__email", flat=True
            )
        )
        for sender in (sergeant, brooklyn_sergeant)
    }
    assert reminded_by[sergeant] == sorted([officer.email, sergeant.email])
    assert reminded_by[brooklyn_sergeant] == sorted([outsider.email, brooklyn_sergeant.email])
    assert chasing.next_manual_reminder_at(order, sergeant, now + 10 * MINUTE) == now + 16 * MINUTE
    assert chasing.next_manual_reminder_at(order, sergeant, now + 16 * MINUTE) is None


def test_only_orders_are_reminded_by_hand(admin, agency, sergeant):
    advisory = published_bulletin(admin, agency, kind="advisory")

    with pytest.raises(PermissionDenied):
        chasing.send_manual_reminder(advisory, by=sergeant, now=timezone.now())


def test_two_chases_at_once_write_each_step_once(admin, precinct17, officer):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=1)

    chasing.chase(now + 15 * MINUTE)
    chasing.chase(now + 15 * MINUTE + timedelta(seconds=1))

    assert steps_of(officer, order) == [(0, None)]


def test_the_chase_reads_only_orders_in_force(
    admin, agency, precinct17, officer, django_assert_max_num_queries
):
    now = timezone.now()
    ended = published_bulletin(admin, agency, now=now - timedelta(days=3), priority=1)
    authoring.lift_bulletin(ended, by=admin, now=now - timedelta(days=2), reason="Over")

    with django_assert_max_num_queries(3):  # the Orders in force (none) and a savepoint
        assert chasing.chase(now) == 0

    order = published_bulletin(admin, precinct17, now=now - 20 * MINUTE, priority=1)
    steps = chasing.settings.ESCALATION_MAX_STEPS + 1
    with django_assert_max_num_queries(1 + steps + 2 + 20):  # + the outbox of what it wrote
        written = chasing.chase(now)

    assert written == order.recipients.count() > 0


def test_each_sweep_audits_what_it_sent_once_per_bulletin_and_step(
    admin, agency, sergeant, squad17, squad_officer, officer
):
    """Issue 19, point 8: automatic reminders and escalations are in the audit trail, one
    event per sweep run, bulletin and step, with the count and who (by id)."""
    from portal.models import AuditEvent

    now = timezone.now()
    order = published_bulletin(admin, squad17, now=now, priority=1)
    other = published_bulletin(admin, agency, now=now, priority=1, title="Second order")

    chasing.chase(now + 15 * MINUTE)  # step 0 of both
    chasing.chase(now + 15 * MINUTE + timedelta(seconds=1))  # nothing new: no event
    chasing.chase(now + 30 * MINUTE)  # step 1 (escalation) of both

    events = AuditEvent.objects.filter(action__in=["bulletin.reminder", "bulletin.escalation"])
    by_key = {(e.object_id, e.action, e.detail["step"]): e for e in events}
    assert len(by_key) == events.count() == 4
    reminded = by_key[(str(order.pk), "bulletin.reminder", 0)]
    assert reminded.actor is None and reminded.object_version == 1
    assert reminded.detail["people"] == 1
    assert reminded.detail["user_ids"] == [squad_officer.pk]
    assert reminded.detail["more_people"] == 0
    everyone = by_key[(str(other.pk), "bulletin.reminder", 0)]
    outstanding = order.recipients.model.objects.filter(
        bulletin=other, acknowledged_version__isnull=True
    )
    assert everyone.detail["people"] == outstanding.count() >= 3
    assert everyone.detail["user_ids"] == sorted(outstanding.values_list("user_id", flat=True))
    assert admin.pk not in everyone.detail["user_ids"]  # the issuer acknowledged it
    escalated = by_key[(str(order.pk), "bulletin.escalation", 1)]
    assert escalated.detail["unit_ids"] == [squad17.pk]
    assert escalated.detail["user_ids"] == [squad_officer.pk]


def test_a_large_batch_names_the_first_people_and_counts_the_rest(
    settings, admin, precinct17, officer
):
    from portal.models import AuditEvent

    UserFactory.create_batch(4, unit=precinct17)
    chasing.AUDITED_PEOPLE, cap = 3, chasing.AUDITED_PEOPLE
    try:
        now = timezone.now()
        published_bulletin(admin, precinct17, now=now, priority=1)
        chasing.chase(now + 15 * MINUTE)
    finally:
        chasing.AUDITED_PEOPLE = cap

    event = AuditEvent.objects.get(action="bulletin.reminder")
    assert event.detail["people"] == 5
    assert len(event.detail["user_ids"]) == 3 and event.detail["more_people"] == 2

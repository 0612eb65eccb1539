from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
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

    with pytest.raises(Exception):  # noqa: B017 - the sergeant does not manage an agency order
        chasing.send_manual_reminder(order, by=sergeant, now=now)
    sent = chasing.send_manual_reminder(order, by=admin, now=now + MINUTE)
    with pytest.raises(ValidationError, match="Try again in 5 min"):
        chasing.send_manual_reminder(order, by=admin, now=now + 11 * MINUTE)
    again = chasing.send_manual_reminder(order, by=admin, now=now + 16 * MINUTE)

    assert sent == again == 3
    reminded = set(
        Reminder.objects.filter(is_manual=True).values_list("recipient__user__email", flat=True)
    )
    assert reminded == {officer.email, outsider.email, admin.email}
    assert emailed("reminder").count(officer.email) == 2


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

"""The sergeant's roll call and the officers' co-signature (issue 23): start, present, briefed,
finish, the roll-call code, co-signing, and every refusal with nothing written."""

import datetime as dt
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from bulletins.models import (
    Receipt,
    Recipient,
    RollCall,
    RollCallBriefing,
    RollCallPerson,
)
from bulletins.services import authoring, reading
from bulletins.services import roll_call as service
from portal import tours
from portal.models import AuditEvent, Tour, User
from tests.factories import UserFactory, approver, published_bulletin

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def fresh_cache(own_cache_keys):
    """Code failures are counted in the shared cache: a key prefix of the test's own."""


@pytest.fixture
def day(agency):
    """The agency's default tours; the Day tour is returned."""
    made = [
        Tour.objects.create(unit=agency, name=name, starts_at=start, ends_at=end, position=n)
        for n, (name, start, end) in enumerate(
            [("Day", dt.time(7), dt.time(15)), ("Evening", dt.time(15), dt.time(23)),
             ("Midnight", dt.time(23), dt.time(7))]
        )
    ]  # fmt: skip
    tours.tours_changed(agency)
    return made[0]


@pytest.fixture
def day_roster(day, officer, auxiliary):
    User.objects.filter(pk__in=[officer.pk, auxiliary.pk]).update(tour="Day")
    officer.tour = auxiliary.tour = "Day"
    return [officer, auxiliary]


@pytest.fixture
def orders(admin, sergeant, agency, precinct17, precinct75):
    """In force: the department's pairing order (Immediate), the precinct's vehicle checks
    (Priority); not to brief: an Advisory and an Order of the 75th Precinct."""
    now = timezone.now() - 60 * MINUTE
    pairing = published_bulletin(admin, agency, now=now, title="All officers paired")
    vehicles = published_bulletin(
        sergeant, precinct17, now=now + MINUTE, title="Check vehicles", priority=2
    )
    published_bulletin(sergeant, precinct17, now=now, title="Protest tonight", kind="advisory")
    published_bulletin(admin, precinct75, now=now, title="75th only")
    return pairing, vehicles


def _started(sergeant, precinct17, day, now=None):
    return service.start_roll_call(
        unit=precinct17, tour=day, by=sergeant, now=now or timezone.now()
    )


def _finished(sergeant, precinct17, day, present, now=None):
    now = now or timezone.now()
    roll_call = _started(sergeant, precinct17, day, now)
    versions = [order.current_version.pk for order in service.orders_to_brief(roll_call, now)]
    return service.finish_roll_call(
        roll_call, present_ids=[p.pk for p in present], briefed_version_ids=versions,
        by=sergeant, now=now,
    )  # fmt: skip


def _actions(roll_call):
    return list(
        AuditEvent.objects.filter(object_type="bulletins.rollcall", object_id=str(roll_call.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_roll_call_end_to_end_in_the_test_client(
    client, sergeant, officer, auxiliary, precinct17, day_roster, orders
):
    from tests.conftest import PortalClient

    pairing, vehicles = orders
    client.force_login(sergeant)

    index = client.get(reverse("bulletins:roll_call"))
    started = client.post(
        reverse("bulletins:roll_call_start"), {"unit": precinct17.pk, "tour": "Day"}
    )
    roll_call = RollCall.objects.get()
    screen = client.get(reverse("bulletins:roll_call_detail", args=[roll_call.pk]))
    finished = client.post(
        reverse("bulletins:roll_call_finish", args=[roll_call.pk]),
        {"present": [officer.pk], "action": "finish",
         "briefed": [pairing.versions.get().pk, vehicles.versions.get().pk]},
    )  # fmt: skip
    roll_call.refresh_from_db()
    with_code = client.get(reverse("bulletins:roll_call_detail", args=[roll_call.pk]))
    phone = PortalClient()
    phone.force_login(officer)
    shown = phone.post(reverse("bulletins:roll_call_code"), {"code": roll_call.code.lower()})
    signed = phone.post(reverse("bulletins:roll_call_sign"), {"code": roll_call.code})
    after = client.get(reverse("bulletins:roll_call_detail", args=[roll_call.pk]))

    assert index.status_code == HTTPStatus.OK
    assert "Start roll call" in index.text and "Roll-call code" in index.text
    assert started.status_code == HTTPStatus.FOUND
    assert (roll_call.unit, roll_call.tour_name, roll_call.sergeant) == (
        precinct17,
        "Day",
        sergeant,
    )
    assert screen.text.index("All officers paired") < screen.text.index("Check vehicles")
    assert "Protest tonight" not in screen.text and "75th only" not in screen.text
    assert officer.name in screen.text and auxiliary.name in screen.text
    assert finished.status_code == HTTPStatus.FOUND
    assert len(roll_call.code) == 6 and roll_call.finished_at is not None
    assert roll_call.code_expires_at == roll_call.finished_at + 30 * MINUTE
    assert roll_call.code in with_code.text
    assert set(RollCallPerson.objects.filter(present=True).values_list("user", flat=True)) == {
        officer.pk
    }
    assert RollCallBriefing.objects.filter(roll_call=roll_call).count() == 2
    assert shown.status_code == HTTPStatus.OK
    assert "Acknowledge briefed orders (2)" in shown.text
    assert signed.status_code == HTTPStatus.FOUND
    receipts = Receipt.objects.filter(user=officer, acknowledged_at__isnull=False)
    assert {r.bulletin_id for r in receipts} == {pairing.pk, vehicles.pk}
    for receipt in receipts:
        assert receipt.method == Receipt.Method.ROLL_CALL
        assert receipt.roll_call_id == roll_call.pk
        assert receipt.statement == service.STATEMENT
        assert receipt.auth_method == "session"  # as any acknowledgement in the test client
        assert receipt.ip == "127.0.0.1"
        assert receipt.content_hash == receipt.version.content_hash
    told = Recipient.objects.filter(user=officer, bulletin__in=[pairing, vehicles])
    assert {(r.acknowledged_version, r.acknowledged_method) for r in told} == {(1, "roll_call")}
    acks = AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer)
    assert {e.detail["method"] for e in acks} == {"roll_call"} and acks.count() == 2
    assert _actions(roll_call) == ["roll_call.start", "roll_call.finish", "roll_call.co_sign"]
    assert "co-signed" in after.text


def test_counts_follow_who_is_present_and_orders_acknowledged_by_all_are_left_out(
    sergeant, officer, auxiliary, precinct17, day, day_roster, orders
):
    pairing, vehicles = orders
    now = timezone.now()
    reading.acknowledge(vehicles.pk, user=officer, version_number=1, now=now)
    reading.acknowledge(vehicles.pk, user=auxiliary, version_number=1, now=now)
    reading.acknowledge(pairing.pk, user=officer, version_number=1, now=now)
    roll_call = _started(sergeant, precinct17, day, now)

    before = service.orders_to_brief(roll_call, now)
    service.mark_present(roll_call, present_ids=[officer.pk], by=sergeant, now=now)
    present_only = service.orders_to_brief(roll_call, now)

    assert [(o.pk, o.not_acknowledged_count) for o in before] == [(pairing.pk, 1)]
    assert [(o.pk, o.not_acknowledged_count) for o in present_only] == [(pairing.pk, 0)]
    assert before[0].current_version.number == 1


def test_a_code_after_30_minutes_is_refused_and_nothing_is_written(
    client, sergeant, officer, precinct17, day, day_roster, orders
):
    finished_at = timezone.now() - 31 * MINUTE
    roll_call = _finished(sergeant, precinct17, day, [officer], now=finished_at)
    client.force_login(officer)

    with pytest.raises(ValidationError) as refused:
        service.co_sign(roll_call.code, person=officer, now=finished_at + 30 * MINUTE)
    response = client.post(reverse("bulletins:roll_call_sign"), {"code": roll_call.code})

    assert refused.value.code == "expired"
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "expired" in response.text
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()
    assert RollCallPerson.objects.get(user=officer).co_signed_at is None


def test_a_code_just_inside_30_minutes_is_taken(sergeant, officer, precinct17, day, day_roster,
                                                 orders):  # fmt: skip
    finished_at = timezone.now() - 29 * MINUTE
    roll_call = _finished(sergeant, precinct17, day, [officer], now=finished_at)

    receipts = service.co_sign(roll_call.code, person=officer, now=finished_at + 29 * MINUTE)

    assert len(receipts) == 2


def test_the_code_of_another_roll_call_is_refused(
    client, sergeant, officer, precinct17, squad17, day, day_roster, orders
):
    squad_officer = UserFactory(unit=squad17, tour="Day", name="Tom Brennan")
    mine = _finished(sergeant, precinct17, day, [officer])
    other = service.start_roll_call(unit=squad17, tour=day, by=sergeant, now=timezone.now())
    other = service.finish_roll_call(
        other, present_ids=[squad_officer.pk], briefed_version_ids=[], by=sergeant,
        now=timezone.now(),
    )  # fmt: skip
    client.force_login(officer)

    response = client.post(reverse("bulletins:roll_call_code"), {"code": other.code})

    assert mine.code != other.code
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert service.OTHER_ROLL_CALL in response.text
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()


def test_an_officer_not_marked_present_cannot_use_the_code(
    client, sergeant, officer, auxiliary, precinct17, day, day_roster, orders
):
    roll_call = _finished(sergeant, precinct17, day, [officer])
    client.force_login(auxiliary)

    shown = client.post(reverse("bulletins:roll_call_code"), {"code": roll_call.code})
    signed = client.post(reverse("bulletins:roll_call_sign"), {"code": roll_call.code})

    assert shown.status_code == signed.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "You were not marked present at this roll call" in signed.text
    assert not Receipt.objects.filter(user=auxiliary, acknowledged_at__isnull=False).exists()
    assert RollCallPerson.objects.get(user=auxiliary).co_signed_at is None


def test_an_unknown_or_malformed_code_is_refused(client, officer, day_roster):
    client.force_login(officer)

    unknown = client.post(reverse("bulletins:roll_call_code"), {"code": "ZZZZZZ"})
    malformed = client.post(reverse("bulletins:roll_call_code"), {"code": "0O1IL!"})

    assert unknown.status_code == malformed.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert service.UNKNOWN_CODE in unknown.text


def test_an_order_acknowledged_already_is_skipped(
    sergeant, officer, precinct17, day, day_roster, orders
):
    pairing, vehicles = orders
    earlier = timezone.now() - 5 * MINUTE
    roll_call = _finished(sergeant, precinct17, day, [officer])
    reading.acknowledge(pairing.pk, user=officer, version_number=1, now=earlier)

    states = {o.bulletin.pk: o.state for o in service.briefed_orders(roll_call, officer, earlier)}
    receipts = service.co_sign(roll_call.code, person=officer, now=timezone.now())
    again = service.co_sign(roll_call.code, person=officer, now=timezone.now())

    assert states == {pairing.pk: "done", vehicles.pk: "sign"}
    assert [r.bulletin_id for r in receipts] == [vehicles.pk]
    portal = Receipt.objects.get(user=officer, bulletin=pairing)
    assert (portal.method, portal.roll_call_id, portal.acknowledged_at) == ("", None, earlier)
    assert again == []
    assert Receipt.objects.filter(user=officer, method="roll_call").count() == 1


def test_an_order_amended_materially_after_the_briefing_is_refused_for_that_order(
    client, admin, sergeant, officer, precinct17, day, day_roster, orders
):
    pairing, vehicles = orders
    roll_call = _finished(sergeant, precinct17, day, [officer])
    authoring.amend_bulletin(
        vehicles, by=sergeant, now=timezone.now(), reason="Check the wheels too.",
        is_material=True, instruction="Check brake lines, tyres and wheel nuts.",
    )  # fmt: skip
    authoring.amend_bulletin(
        pairing, by=admin, now=timezone.now(), reason="Typo.", is_material=False,
        instruction=pairing.instruction.rstrip("."), approved_by=approver(),
    )  # fmt: skip
    client.force_login(officer)

    shown = client.post(reverse("bulletins:roll_call_code"), {"code": roll_call.code})
    signed = client.post(reverse("bulletins:roll_call_sign"), {"code": roll_call.code})

    assert service.CHANGED in shown.text
    assert "Acknowledge briefed orders (1)" in shown.text
    assert signed.status_code == HTTPStatus.FOUND
    signed_for = Receipt.objects.filter(user=officer, acknowledged_at__isnull=False)
    assert [(r.bulletin_id, r.version.number) for r in signed_for] == [(pairing.pk, 1)]
    assert Recipient.objects.get(user=officer, bulletin=vehicles).acknowledged_version is None


def test_an_order_with_a_check_of_understanding_is_left_to_its_page(
    sergeant, officer, precinct17, day, day_roster
):
    check = [{"question": "Alone?", "choices": ["Yes", "No"], "answer": 1}]
    quiz_order = published_bulletin(sergeant, precinct17, title="Checked", questions=check)
    roll_call = _finished(sergeant, precinct17, day, [officer])

    states = [o.state for o in service.briefed_orders(roll_call, officer, timezone.now())]
    receipts = service.co_sign(roll_call, person=officer, now=timezone.now())

    assert states == ["check"]
    assert receipts == []
    assert Recipient.objects.get(user=officer, bulletin=quiz_order).acknowledged_version is None


def test_finishing_twice_records_once(
    client, sergeant, officer, auxiliary, precinct17, day, day_roster, orders
):
    now = timezone.now()
    roll_call = _finished(sergeant, precinct17, day, [officer], now=now)
    client.force_login(sergeant)

    again = service.finish_roll_call(
        roll_call, present_ids=[auxiliary.pk], briefed_version_ids=[], by=sergeant,
        now=now + MINUTE,
    )  # fmt: skip
    posted = client.post(
        reverse("bulletins:roll_call_finish", args=[roll_call.pk]),
        {"present": [auxiliary.pk], "action": "finish"},
    )

    assert (again.code, again.finished_at) == (roll_call.code, now)
    assert posted.status_code == HTTPStatus.FOUND
    assert RollCallBriefing.objects.filter(roll_call=roll_call).count() == 2
    present = RollCallPerson.objects.filter(roll_call=roll_call, present=True)
    assert [p.user_id for p in present] == [officer.pk]
    assert _actions(roll_call) == ["roll_call.start", "roll_call.finish"]


def test_finishing_refuses_bad_input_and_changes_nothing(
    client, sergeant, officer, outsider, precinct17, day, day_roster, orders
):
    roll_call = _started(sergeant, precinct17, day)
    client.force_login(sergeant)
    url = reverse("bulletins:roll_call_finish", args=[roll_call.pk])

    nobody = client.post(url, {"action": "finish"})
    stranger = client.post(url, {"present": [outsider.pk], "action": "finish"})
    stale = client.post(url, {"present": [officer.pk], "briefed": [999999], "action": "finish"})
    junk = client.post(url, {"present": ["x"], "action": "finish"})

    assert [r.status_code for r in (nobody, stranger, stale, junk)] == [
        HTTPStatus.UNPROCESSABLE_ENTITY
    ] * 4
    assert "Tick who is present" in nobody.text
    assert "not on this roll call" in stranger.text
    assert "An order changed or ended" in stale.text
    roll_call.refresh_from_db()
    assert roll_call.finished_at is None and roll_call.code == ""
    assert not RollCallPerson.objects.filter(present=True).exists()
    assert not RollCallBriefing.objects.exists()


def test_starting_refuses_an_empty_roster_and_a_unit_outside_scope(
    client, sergeant, precinct17, precinct75, day
):
    client.force_login(sergeant)

    empty = client.post(
        reverse("bulletins:roll_call_start"), {"unit": precinct17.pk, "tour": "Day"}
    )
    elsewhere = client.post(
        reverse("bulletins:roll_call_start"), {"unit": precinct75.pk, "tour": "Day"}
    )
    unknown_tour = client.post(
        reverse("bulletins:roll_call_start"), {"unit": precinct17.pk, "tour": "Swing"}
    )

    assert empty.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Nobody in 17th Precinct has Day as their regular tour" in empty.text
    assert elsewhere.status_code == unknown_tour.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not RollCall.objects.exists()


def test_start_defaults_to_the_tour_starting_nearest_now(client, sergeant, day, day_roster):
    client.force_login(sergeant)
    nearest, _start = tours.nearest_tour_start(sergeant.unit, timezone.now())

    response = client.get(reverse("bulletins:roll_call"))

    form = response.context["start_form"]
    assert form.initial == {"unit": sergeant.unit, "tour": nearest.name}
    assert f'<option value="{nearest.name}" selected>' in response.text


def test_a_unit_with_tours_of_its_own_is_offered_them_and_runs_its_roll_call(
    client, admin, agency, precinct75, outsider, day
):
    early = Tour.objects.create(
        unit=precinct75, name="Early", starts_at=dt.time(6), ends_at=dt.time(14)
    )
    tours.tours_changed(agency)
    User.objects.filter(pk=outsider.pk).update(tour="Early")
    client.force_login(admin)

    form = client.get(reverse("bulletins:roll_call")).context["start_form"]
    names = [name for name, _ in form.fields["tour"].choices]
    response = client.post(
        reverse("bulletins:roll_call_start"), {"unit": precinct75.pk, "tour": "Early"}
    )

    assert names[:3] == ["Day", "Evening", "Midnight"] and "Early" in names
    started = RollCall.objects.get(unit=precinct75)
    assert response.status_code == 302 and started.tour == early
    assert list(started.people.values_list("user_id", flat=True)) == [outsider.pk]


def test_too_many_wrong_codes_lock_the_code_entry_like_sign_in(
    client, settings, sergeant, officer, precinct17, day, day_roster, orders
):
    settings.ROLL_CALL_CODE_FAILURE_LIMIT = 3
    roll_call = _finished(sergeant, precinct17, day, [officer])
    client.force_login(officer)

    wrong = [client.post(reverse("bulletins:roll_call_code"), {"code": "ZZZZZ" + c})
             for c in "234"]  # fmt: skip
    right = client.post(reverse("bulletins:roll_call_sign"), {"code": roll_call.code})

    assert [r.status_code for r in wrong] == [HTTPStatus.UNPROCESSABLE_ENTITY] * 3
    assert right.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many wrong roll-call codes" in right.text
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()
    assert AuditEvent.objects.filter(action="roll_call.code_locked", actor=officer).count() == 1


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("sergeant", 200), ("admin", 200), ("borough_chief", 200), ("officer", 404),
     ("outsider", 404), ("sergeant75", 404), ("squad_sergeant", 404)],
)  # fmt: skip
def test_only_the_sergeant_and_supervisors_over_the_unit_see_and_finish_a_roll_call(
    request, client, sergeant, officer, precinct17, squad17, precinct75, manhattan, day,
    day_roster, orders, persona, expected,
):  # fmt: skip
    people = {
        "borough_chief": lambda: UserFactory(unit=manhattan, role=User.Role.SUPERVISOR),
        "sergeant75": lambda: UserFactory(unit=precinct75, role=User.Role.SUPERVISOR),
        "squad_sergeant": lambda: UserFactory(unit=squad17, role=User.Role.SUPERVISOR),
    }
    person = people[persona]() if persona in people else request.getfixturevalue(persona)
    roll_call = _started(sergeant, precinct17, day)
    client.force_login(person)

    seen = client.get(reverse("bulletins:roll_call_detail", args=[roll_call.pk]))
    finish = client.post(
        reverse("bulletins:roll_call_finish", args=[roll_call.pk]),
        {"present": [officer.pk], "action": "finish"},
    )

    assert seen.status_code == expected
    assert finish.status_code == (HTTPStatus.FOUND if expected == 200 else HTTPStatus.NOT_FOUND)
    roll_call.refresh_from_db()
    assert (roll_call.finished_at is not None) == (expected == 200)


def test_an_officer_may_not_start_a_roll_call(client, officer, precinct17, day, day_roster):
    client.force_login(officer)

    page = client.get(reverse("bulletins:roll_call"))
    response = client.post(
        reverse("bulletins:roll_call_start"), {"unit": precinct17.pk, "tour": "Day"}
    )

    assert "Start roll call" not in page.text and "Roll-call code" in page.text
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not RollCall.objects.exists()


def test_the_sergeants_screen_does_a_fixed_number_of_queries(
    client, sergeant, admin, agency, precinct17, day, django_assert_max_num_queries
):
    people = [UserFactory(unit=precinct17, tour="Day") for _ in range(25)]
    for n in range(8):
        published_bulletin(admin, agency, title=f"Order {n}")
    roll_call = _started(sergeant, precinct17, day)
    service.mark_present(roll_call, present_ids=[p.pk for p in people[:10]], by=sergeant,
                         now=timezone.now())  # fmt: skip
    client.force_login(sergeant)

    with django_assert_max_num_queries(16):
        response = client.get(reverse("bulletins:roll_call_detail", args=[roll_call.pk]))

    assert response.text.count('name="briefed"') == 8
    assert response.text.count('name="present"') == 25


def test_method_label_says_who_briefed_and_when_it_was_co_signed(
    sergeant, officer, precinct17, day, day_roster, orders, settings
):
    briefed_at = dt.datetime(2026, 12, 4, 12, 5, tzinfo=dt.UTC)  # 07:05 in New York
    roll_call = _finished(sergeant, precinct17, day, [officer], now=timezone.now())
    RollCall.objects.filter(pk=roll_call.pk).update(finished_at=briefed_at)
    Receipt.objects.create(
        bulletin=orders[0], version=orders[0].versions.get(), user=officer,
        acknowledged_at=briefed_at + 4 * MINUTE, method="roll_call", roll_call=roll_call,
    )  # fmt: skip

    receipt = Receipt.objects.select_related("roll_call__sergeant").get(user=officer)

    assert service.method_label(receipt) == (
        "briefed at roll call by Sgt. Dan Kowalski at 07:05, co-signed 07:09"
    )
    assert service.method_label(Receipt(method="")) == "In the portal"

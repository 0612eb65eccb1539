"""Signatures on the printed roll-call sheet, recorded by the sergeant after roll call: once,
skipped or refused where they do not apply, counted apart on the coverage page, labelled on the
evidence record, the CSV and the API; the print sheet and the paper page's access."""

import csv
import io
from datetime import time, timedelta
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
from bulletins.services import authoring, reading, roll_call_paper, tracking
from portal.models import AuditEvent, Tour, User
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(sergeant, precinct17):
    """Two Orders in force for the 17th, published an hour ago by its sergeant."""
    earlier = timezone.now() - timedelta(hours=1)
    pairing = published_bulletin(
        sergeant, precinct17, now=earlier, title="All officers paired",
        instruction="Work in pairs. No solo posts.",
    )  # fmt: skip
    cars = published_bulletin(
        sergeant, precinct17, now=earlier, title="Check your car before the tour",
        instruction="Look under the car and in the wheel arches before you drive.", priority=2,
    )  # fmt: skip
    return pairing, cars


def make_roll_call(sergeant, unit, people, orders, *, present=None, finished=True, now=None):
    """A roll call of the Day tour made with the ORM: `people` on the roster (all present unless
    `present` says who), `orders` briefed at their current version."""
    now = now or timezone.now() - timedelta(minutes=20)
    tour, _ = Tour.objects.get_or_create(
        unit=unit, name="Day", defaults={"starts_at": time(7), "ends_at": time(15)}
    )
    roll_call = RollCall.objects.create(
        unit=unit, tour=tour, tour_name="Day", tour_starts_at=now, sergeant=sergeant,
        started_at=now, finished_at=now if finished else None,
        code="ABC234" if finished else "", code_expires_at=now + timedelta(minutes=30),
    )  # fmt: skip
    present = people if present is None else present
    RollCallPerson.objects.bulk_create(
        RollCallPerson(roll_call=roll_call, user=person, present=person in present)
        for person in people
    )
    if finished:
        RollCallBriefing.objects.bulk_create(
            RollCallBriefing(roll_call=roll_call, bulletin=order,
                             version=order.versions.get(number=order.version), briefed_at=now)
            for order in orders
        )  # fmt: skip
    return roll_call


@pytest.fixture
def roll_call(sergeant, precinct17, officer, auxiliary, orders):
    return make_roll_call(sergeant, precinct17, [officer, auxiliary], orders)


def record(roll_call, people, by, now=None):
    return roll_call_paper.record_paper_signatures(
        roll_call, person_ids=[person.pk for person in people], by=by, now=now or timezone.now()
    )


def test_a_paper_signature_makes_one_receipt_per_order_briefed(
    roll_call, orders, officer, sergeant
):
    now = timezone.now()

    result = record(roll_call, [officer], sergeant, now)

    assert (result.receipts, result.skipped, result.refused) == (2, 0, [])
    receipts = Receipt.objects.filter(user=officer, acknowledged_at__isnull=False)
    assert {r.bulletin_id for r in receipts} == {order.pk for order in orders}
    for receipt in receipts:
        assert receipt.method == Receipt.Method.PAPER
        assert receipt.recorded_by == sergeant
        assert receipt.roll_call_id == roll_call.pk
        assert receipt.acknowledged_at == now
        assert receipt.statement == "Signed the roll-call sheet (recorded by Sgt. Dan Kowalski)"
        assert receipt.content_hash == receipt.version.content_hash
    told = Recipient.objects.filter(user=officer)
    assert {(r.acknowledged_version, r.acknowledged_method) for r in told} == {(1, "paper")}
    person = RollCallPerson.objects.get(roll_call=roll_call, user=officer)
    assert (person.signed_on_paper_at, person.paper_recorded_by) == (now, sergeant)
    events = AuditEvent.objects.filter(actor=sergeant)
    assert events.filter(action="roll_call.paper_signatures").count() == 1
    on_paper = events.filter(action="bulletin.acknowledge_on_paper")
    assert sorted(e.object_id for e in on_paper) == sorted(str(order.pk) for order in orders)
    assert {e.detail["person"] for e in on_paper} == {officer.pk}


def test_a_paper_signature_is_recorded_once(roll_call, officer, sergeant):
    record(roll_call, [officer], sergeant)

    with pytest.raises(ValidationError) as refused:
        record(roll_call, [officer], sergeant)

    assert "Maria Lopez: not present at this roll call, or already recorded" in str(refused.value)
    assert Receipt.objects.filter(user=officer, method="paper").count() == 2
    assert AuditEvent.objects.filter(action="roll_call.paper_signatures").count() == 1


def test_an_order_already_acknowledged_is_skipped_and_left_as_it_was(
    roll_call, orders, officer, sergeant
):
    pairing, cars = orders
    reading.acknowledge(pairing.pk, user=officer, version_number=1, now=timezone.now())
    before = Receipt.objects.get(user=officer, bulletin=pairing)

    result = record(roll_call, [officer], sergeant)

    assert (result.receipts, result.skipped) == (1, 1)
    after = Receipt.objects.get(user=officer, bulletin=pairing)
    assert (after.method, after.statement, after.acknowledged_at) == (
        "",
        before.statement,
        before.acknowledged_at,
    )
    assert Receipt.objects.get(user=officer, bulletin=cars).method == "paper"
    assert Recipient.objects.get(user=officer, bulletin=pairing).acknowledged_method == ""


def test_an_order_amended_since_the_briefing_is_refused(roll_call, orders, officer, sergeant):
    pairing, cars = orders
    authoring.amend_bulletin(
        pairing, by=sergeant, now=timezone.now(), reason="Pairs of three at night.",
        is_material=True, instruction="Work in threes at night.",
    )  # fmt: skip

    result = record(roll_call, [officer], sergeant)

    assert result.refused == [
        '"All officers paired" changed after roll call: not recorded on paper. They must read it.'
    ]
    assert result.receipts == 1
    assert not Receipt.objects.filter(user=officer, bulletin=pairing, acknowledged_at__isnull=False)
    assert Recipient.objects.get(user=officer, bulletin=pairing).acknowledged_version is None
    assert Receipt.objects.get(user=officer, bulletin=cars).method == "paper"


@pytest.mark.parametrize("who", ["absent", "co_signed", "stranger"])
def test_someone_not_to_record_refuses_the_whole_choice(
    who, sergeant, precinct17, officer, auxiliary, outsider, orders
):
    roll_call = make_roll_call(
        sergeant, precinct17, [officer, auxiliary], orders, present=[officer, auxiliary]
    )
    if who == "absent":
        RollCallPerson.objects.filter(user=auxiliary).update(present=False)
    elif who == "co_signed":
        RollCallPerson.objects.filter(user=auxiliary).update(co_signed_at=timezone.now())
    chosen = outsider if who == "stranger" else auxiliary

    with pytest.raises(ValidationError):
        record(roll_call, [officer, chosen], sergeant)

    assert not Receipt.objects.filter(method="paper").exists()
    assert not RollCallPerson.objects.filter(signed_on_paper_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action__contains="paper").exists()


def test_a_roll_call_not_finished_refuses_paper_signatures(sergeant, precinct17, officer, orders):
    roll_call = make_roll_call(sergeant, precinct17, [officer], orders, finished=False)

    with pytest.raises(ValidationError, match="Finish the roll call first"):
        record(roll_call, [officer], sergeant)

    assert not Receipt.objects.filter(method="paper").exists()


def test_nobody_ticked_is_refused(roll_call, sergeant):
    with pytest.raises(ValidationError, match="Tick at least one person"):
        record(roll_call, [], sergeant)


def _at_roll_call(order, person, now):
    """A roll-call co-signature's summary on the recipient row (the co-sign is 23b's)."""
    Recipient.objects.filter(bulletin=order, user=person).update(
        acknowledged_version=order.ack_version, acknowledged_at=now,
        acknowledged_method=Receipt.Method.ROLL_CALL,
    )  # fmt: skip


def test_the_coverage_figures_count_roll_call_and_paper_apart(
    client, roll_call, orders, officer, auxiliary, sergeant, precinct17
):
    pairing, _ = orders
    briefed, late = (
        UserFactory(email=f"{name}@agency.test", name=f"{name.title()} Officer", unit=precinct17)
        for name in ("briefed", "late")
    )
    for person in (briefed, late):
        Recipient.objects.create(bulletin=pairing, user=person, unit=precinct17,
                                 added_at=timezone.now())  # fmt: skip
    record(roll_call, [officer, auxiliary], sergeant)
    _at_roll_call(pairing, briefed, timezone.now())

    summary = tracking.coverage_summary(pairing)
    client.force_login(sergeant)
    page = client.get(reverse("bulletins:coverage", args=[pairing.pk]))

    # Told: officer and auxiliary (paper), briefed (roll call), sergeant (issued it), late.
    assert (summary["audience"], summary["acknowledged"], summary["outstanding"]) == (5, 4, 1)
    assert summary["acknowledged_at_roll_call"] == 1
    assert summary["acknowledged_on_paper"] == 2
    assert "of which 1 at roll call, 2 on paper (recorded by a sergeant)" in page.text


def test_an_earlier_version_signed_on_paper_is_not_counted_on_paper(
    roll_call, orders, officer, sergeant
):
    pairing, _ = orders
    record(roll_call, [officer], sergeant)
    authoring.amend_bulletin(
        pairing, by=sergeant, now=timezone.now(), reason="Pairs of three at night.",
        is_material=True, instruction="Work in threes at night.",
    )  # fmt: skip
    pairing.refresh_from_db()

    amended = tracking.coverage_summary(pairing)
    reading.acknowledge(pairing.pk, user=officer, version_number=2, now=timezone.now())
    again = tracking.coverage_summary(pairing)

    assert (amended["acknowledged_on_paper"], amended["earlier_version_only"]) == (0, 1)
    assert (again["acknowledged"], again["acknowledged_on_paper"]) == (2, 0)
    assert Recipient.objects.get(user=officer, bulletin=pairing).acknowledged_method == ""


def test_no_paper_figures_show_when_nobody_signed_on_paper(client, orders, sergeant):
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:coverage", args=[orders[0].pk]))

    assert page.status_code == HTTPStatus.OK
    assert "on paper" not in page.text


def _label(by, at):
    return f"signed on paper, recorded by Sgt. Dan Kowalski at {timezone.localtime(at):%H:%M}"


def test_the_evidence_record_says_how_each_receipt_was_made(
    client, roll_call, orders, officer, sergeant
):
    pairing, _ = orders
    now = timezone.now()
    record(roll_call, [officer], sergeant, now)
    client.force_login(sergeant)
    url = reverse("bulletins:evidence", args=[pairing.pk, officer.pk])

    page = client.get(url)
    signed = client.get(url, {"format": "json"}).json()

    assert f"How: {_label(sergeant, now)}" in page.text
    assert "a weaker method" in page.text
    version = signed["record"]["versions"][0]
    assert (version["method"], version["how"]) == ("paper", _label(sergeant, now))


def test_the_evidence_record_of_a_portal_acknowledgement_says_in_the_portal(
    client, orders, officer, sergeant
):
    pairing, _ = orders
    reading.acknowledge(pairing.pk, user=officer, version_number=1, now=timezone.now())
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:evidence", args=[pairing.pk, officer.pk]))

    assert "How: in the portal." in page.text
    assert "a weaker method" not in page.text


def test_the_recipients_csv_ends_with_how_each_was_acknowledged(
    client, roll_call, orders, officer, auxiliary, sergeant
):
    pairing, _ = orders
    now = timezone.now()
    record(roll_call, [officer], sergeant, now)
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:recipients_csv", args=[pairing.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    header, *people = rows
    column = header.index("how acknowledged")
    assert header[column - 1] == "check of understanding"  # after the columns there were
    how = {row[0]: row[column] for row in people}
    assert how == {
        officer.name: _label(sergeant, now),
        auxiliary.name: "",  # not acknowledged
        sergeant.name: "in the portal",  # issued it: counted as acknowledged
    }


def test_the_api_says_how_my_acknowledgements_were_made(roll_call, officer, sergeant):
    from bulletins.api.schemas import AcknowledgementOut

    now = timezone.now()
    record(roll_call, [officer], sergeant, now)
    receipt = Receipt.objects.select_related("version", "recorded_by").filter(user=officer)[0]

    out = AcknowledgementOut.from_orm(receipt).dict()

    assert (out["method"], out["how"]) == ("paper", _label(sergeant, now))


def test_the_person_record_tags_an_acknowledgement_signed_on_paper(
    client, roll_call, officer, sergeant
):
    record(roll_call, [officer], sergeant)
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:person", args=[officer.pk]))

    assert page.text.count("signed on paper, recorded by a sergeant") == 2


# The pages -------------------------------------------------------------------------------


def test_the_print_sheet_has_the_orders_and_the_roster_to_sign(
    client, roll_call, orders, officer, auxiliary, sergeant
):
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:roll_call_print", args=[roll_call.pk]))

    assert page.status_code == HTTPStatus.OK
    text = page.text
    expected = ["Metro Police Department", "17th Precinct", "Day tour", "07:00-15:00",
                "All officers paired", "Work in pairs. No solo posts.", "Version 1",
                "in force since", officer.name, officer.badge, officer.rank, auxiliary.name,
                ">Signature<", "js/print-sheet", "css/print-sheet"]  # fmt: skip
    assert [words for words in expected if words not in text] == []
    assert text.index("All officers paired") < text.index("Check your car")  # most urgent first
    assert "<script>" not in text  # the CSP forbids inline script


def test_the_print_sheet_before_roll_call_lists_the_orders_to_brief(
    client, sergeant, precinct17, officer, orders
):
    roll_call = make_roll_call(sergeant, precinct17, [officer], orders, finished=False)
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:roll_call_print", args=[roll_call.pk]), {"paper": "a4"})

    assert "All officers paired" in page.text and "Check your car" in page.text
    assert "sheet-a4" in page.text


def test_the_paper_page_records_who_signed(client, roll_call, officer, auxiliary, sergeant):
    client.force_login(sergeant)
    url = reverse("bulletins:roll_call_paper", args=[roll_call.pk])

    form = client.get(url)
    done = client.post(url, {"person": [officer.pk]}, follow=True)

    assert form.status_code == HTTPStatus.OK
    assert f'value="{officer.pk}"' in form.text and f'value="{auxiliary.pk}"' in form.text
    assert "Recorded 1 person as signed on paper: 2 acknowledgements." in done.text
    assert f'value="{officer.pk}"' not in done.text  # never offered twice
    assert Receipt.objects.filter(user=officer, method="paper").count() == 2


def test_the_paper_page_refuses_bad_input_and_changes_nothing(client, roll_call, sergeant):
    client.force_login(sergeant)
    url = reverse("bulletins:roll_call_paper", args=[roll_call.pk])

    nobody = client.post(url, {})
    junk = client.post(url, {"person": ["x", "99999999"]})

    assert nobody.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Tick at least one person" in nobody.text
    assert junk.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not Receipt.objects.filter(method="paper").exists()


@pytest.mark.parametrize("route", ["bulletins:roll_call_print", "bulletins:roll_call_paper"])
@pytest.mark.parametrize(
    ("persona", "expected"),
    [("sergeant", 200), ("admin", 200), ("officer", 404), ("outsider", 404),
     ("other_sergeant", 404)],
)  # fmt: skip
def test_only_who_may_run_the_roll_call_sees_its_paper_pages(
    request, client, roll_call, route, persona, expected, precinct75
):
    if persona == "other_sergeant":
        user = UserFactory(unit=precinct75, role=User.Role.SUPERVISOR, rank="Sergeant")
    else:
        user = request.getfixturevalue(persona)
    client.force_login(user)

    page = client.get(reverse(route, args=[roll_call.pk]))
    posted = client.post(reverse("bulletins:roll_call_paper", args=[roll_call.pk]), {})

    assert page.status_code == expected
    assert posted.status_code == (HTTPStatus.UNPROCESSABLE_ENTITY if expected == 200 else 404)


def test_recording_paper_signatures_needs_a_recent_sign_in(
    client, roll_call, officer, sergeant, settings
):
    client.force_login(sergeant)
    session = client.session
    for method in session["account_authentication_methods"]:
        method["at"] -= settings.ACCOUNT_REAUTHENTICATION_TIMEOUT + 60
    session.save()
    url = reverse("bulletins:roll_call_paper", args=[roll_call.pk])

    page = client.get(url)
    posted = client.post(url, {"person": [officer.pk]})

    assert page.status_code == HTTPStatus.OK
    assert posted.status_code == HTTPStatus.FOUND
    assert "reauthenticate" in posted["Location"]
    assert not Receipt.objects.filter(method="paper").exists()


def test_after_a_roll_call_run_by_the_service_only_who_did_not_co_sign_is_offered(
    roll_call, sergeant, officer, auxiliary, precinct17, orders
):
    from bulletins.services import roll_call as service
    from portal import tours

    day = Tour.objects.get(unit=precinct17, name="Day")
    tours.tours_changed(precinct17)
    User.objects.filter(pk__in=[officer.pk, auxiliary.pk]).update(tour="Day")
    now = timezone.now()
    called = service.start_roll_call(unit=precinct17, tour=day, by=sergeant, now=now)
    versions = [order.current_version.pk for order in service.orders_to_brief(called, now)]
    called = service.finish_roll_call(called, present_ids=[officer.pk, auxiliary.pk],
                             briefed_version_ids=versions, by=sergeant, now=now)  # fmt: skip
    service.co_sign(called, person=officer, now=now)

    offered = [row.user for row in roll_call_paper.paper_candidates(called)]
    result = record(called, [auxiliary], sergeant)

    assert offered == [auxiliary]
    assert result.receipts == len(orders) == 2
    with pytest.raises(ValidationError):
        record(called, [officer], sergeant)

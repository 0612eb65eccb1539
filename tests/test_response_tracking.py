"""What the chain of command sees of the answers back: the coverage split (acknowledged, cannot
comply open / resolved, implemented of those required, outstanding), the overview's ranking by
open "cannot comply", the evidence record and the CSV, and the exercises page."""

import csv
import io
import json
import re
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.urls import reverse
from django.utils import timezone

from bulletins import coverage, evidence
from bulletins.models import Bulletin, CannotComplyReason, Recipient
from bulletins.services import reading, responses, tracking
from tests.factories import approver, published_bulletin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]

MINUTE = timedelta(minutes=1)
QUESTIONS = [
    {"question": "Who may work a solo post?", "choices": ["Nobody", "Sergeants"], "answer": 0}
]


@pytest.fixture
def reasons(agency):
    labels = ["No partner available", "Equipment missing", "Other"]
    return {
        label: CannotComplyReason.objects.create(agency=agency, label=label, position=position)
        for position, label in enumerate(labels)
    }


def _answer(order, person, reasons, at, label="No partner available", detail=""):
    return responses.cannot_comply(order, user=person, reason=reasons[label], detail=detail, now=at)


@pytest.fixture
def story(
    admin, agency, officer, auxiliary, sergeant, outsider, squad_officer, sergeant75, reasons
):
    """An agency-wide Order, one report per unit, with a one-question check, and a known
    pattern of answers (7 told):

    admin       issued it                                         -> acknowledged
    sergeant    passes the check, acknowledges, reports the 17th  -> acknowledged
    squad       cannot comply (open), then passes and acknowledges -> acknowledged
    officer     two wrong tries; cannot comply, open              -> cannot comply, open
    auxiliary   one wrong try; cannot comply, resolved            -> cannot comply, resolved
    outsider    nothing                                           -> outstanding
    sergeant75  nothing                                           -> outstanding

    Units asked to report: the agency (its admin), the 17th and the 75th (their sergeants); the
    17th reported."""
    t0 = timezone.now() - timedelta(hours=2)
    order = published_bulletin(
        admin, agency, now=t0, priority=1, implemented_from="units",
        implemented_prompt="Armed officer posted at each public entrance",
        questions=QUESTIONS,
    )  # fmt: skip
    for person, answers, at in (
        (officer, [1], 5), (officer, [1], 6), (auxiliary, [1], 7),
        (sergeant, [0], 8), (squad_officer, [0], 9),
    ):  # fmt: skip
        reading.answer_check(order, user=person, answers=answers, now=t0 + at * MINUTE)
    _answer(order, officer, reasons, t0 + 10 * MINUTE)
    resolved = _answer(order, auxiliary, reasons, t0 + 11 * MINUTE, "Equipment missing")
    responses.resolve(resolved, by=sergeant, resolution="Radio issued at 08:40",
                      now=t0 + 20 * MINUTE)  # fmt: skip
    _answer(order, squad_officer, reasons, t0 + 12 * MINUTE)
    for person, at in ((sergeant, 13), (squad_officer, 25)):
        reading.acknowledge(order.pk, user=person, version_number=1, now=t0 + at * MINUTE)
    responses.report_implemented(
        order, user=sergeant, note="P.O. Diaz posted at the front door", now=t0 + 30 * MINUTE
    )
    order.refresh_from_db()
    order.t0 = t0
    return order


def _everyone(order):
    return Recipient.objects.filter(bulletin=order)


# The coverage split


def test_the_coverage_split_on_a_known_data_set(story):
    figures = tracking.coverage_summary(story)

    assert figures["audience"] == 7
    assert figures["acknowledged"] == 3
    assert figures["cannot_comply"] == 2
    assert figures["cannot_comply_open"] == 1
    assert figures["cannot_comply_resolved"] == 1
    assert figures["outstanding"] == 2
    assert figures["acknowledged"] + figures["cannot_comply"] + figures["outstanding"] == 7
    assert (figures["implemented"], figures["implemented_required"]) == (1, 3)
    assert figures["not_reported"] == 2
    assert figures["quiz"] == {"wrong": 3, "people": 2}
    assert figures["percent"] == 43


def test_the_split_by_unit_rolls_up_the_tree(story):
    rows = tracking.Coverage(story, _everyone(story)).units()

    by_name = {
        row["unit"].name: (
            row["audience"], row["acknowledged"], row["cannot_comply"], row["outstanding"],
            row["implemented"], row["required"],
        )
        for row in rows
    }  # fmt: skip
    assert by_name["Metro Police Department"] == (7, 3, 2, 2, 1, 3)
    assert by_name["Manhattan South"] == (4, 2, 2, 0, 1, 1)
    assert by_name["17th Precinct"] == (4, 2, 2, 0, 1, 1)
    assert by_name["17th Precinct Anti-Crime"] == (1, 1, 0, 0, 0, 0)
    assert by_name["Brooklyn North"] == (2, 0, 0, 2, 0, 1)
    top = next(row for row in rows if row["depth"] == 1)
    assert top["own"]["required"] == 1 and top["own"]["implemented"] == 0


def test_wrong_tries_count_for_the_people_in_scope_only(story, sergeant, sergeant75, outsider):
    from bulletins import permissions

    reading.answer_check(story, user=outsider, answers=[1], now=story.t0 + 40 * MINUTE)

    def quiz(user):
        recipients = permissions.recipients_in_scope(user, _everyone(story), bulletin=story)
        return tracking.coverage_summary(story, recipients)["quiz"]

    assert tracking.coverage_summary(story)["quiz"] == {"wrong": 4, "people": 3}
    assert quiz(sergeant) == {"wrong": 3, "people": 2}
    assert quiz(sergeant75) == {"wrong": 1, "people": 1}


def test_a_sergeant_sees_the_split_of_his_own_people(story, sergeant):
    from bulletins import permissions

    recipients = permissions.recipients_in_scope(sergeant, _everyone(story))

    figures = tracking.coverage_summary(story, recipients)

    assert (figures["audience"], figures["acknowledged"]) == (4, 2)
    assert (figures["cannot_comply_open"], figures["cannot_comply_resolved"]) == (1, 1)
    assert figures["outstanding"] == 0
    assert (figures["implemented"], figures["implemented_required"]) == (1, 1)
    assert figures["quiz"] == {"wrong": 3, "people": 2}


def test_who_answered_cannot_comply_is_not_on_the_outstanding_list(client, story, admin):
    client.force_login(admin)

    listed = client.get(reverse("bulletins:outstanding", args=[story.pk]))

    names = [row.user.email for row in listed.context["page"].object_list]
    assert names == ["outsider@agency.test", "sergeant75@agency.test"]


@pytest.mark.parametrize(
    ("required", "expected"),
    [("everyone", (1, 7)), ("supervisors", (1, 3)), ("units", (1, 3)), ("", (0, 0))],
)
def test_who_must_report_decides_of_how_many(story, required, expected):
    Bulletin.objects.filter(pk=story.pk).update(implemented_from=required)
    story.refresh_from_db()

    figures = tracking.coverage_summary(story)

    assert (figures["implemented"], figures["implemented_required"]) == expected


def test_a_report_of_an_earlier_material_version_no_longer_counts(story, admin):
    from bulletins.services import authoring

    authoring.amend_bulletin(story, by=admin, now=timezone.now(), reason="Side doors too",
                             is_material=True, title="Armed officer at every door",
                             approved_by=approver())  # fmt: skip
    story.refresh_from_db()

    figures = tracking.coverage_summary(story)

    assert (figures["implemented"], figures["implemented_required"]) == (0, 3)
    assert figures["quiz"] == {"wrong": 0, "people": 0}
    # Answers of "cannot comply" stand until resolved, whatever the version: the squad
    # officer's open one counts again now that he has not acknowledged the new version.
    assert (figures["cannot_comply_open"], figures["cannot_comply_resolved"]) == (2, 1)
    assert (figures["acknowledged"], figures["outstanding"]) == (1, 3)


def _figures(page):
    names = re.findall(r"<dt>([\w ]+)</dt><dd>(?:<a [^>]*>)?(\d+)", page)
    return {name: int(count) for name, count in names}


def test_the_coverage_page_shows_the_split_and_says_the_rows_add_up(client, story, admin):
    client.force_login(admin)

    response = client.get(reverse("bulletins:coverage", args=[story.pk]))

    page = response.content.decode()
    assert _figures(page) == {
        "Told": 7, "Opened": 3, "Acknowledged": 3, "Cannot comply": 2, "Outstanding": 2,
        "Implemented": 1,
    }  # fmt: skip
    assert "(1 open, 1 resolved)" in page
    assert "3 acknowledged + 2 cannot comply (said so and have not acknowledged)" in page
    assert "+ 2 outstanding = 7 told" in page
    assert "Check of understanding: <strong>3</strong> wrong answers by <strong>2</strong>" in page
    assert reverse("bulletins:implemented_board", args=[story.pk]) in page


def test_a_new_answer_shows_on_the_kept_coverage_figures_at_once(
    client, story, admin, outsider, reasons
):
    client.force_login(admin)
    before = _figures(client.get(reverse("bulletins:coverage", args=[story.pk])).content.decode())

    _answer(story, outsider, reasons, timezone.now())
    coverage.refresh_watched()
    after = _figures(client.get(reverse("bulletins:coverage", args=[story.pk])).content.decode())

    assert (before["Cannot comply"], before["Outstanding"]) == (2, 2)
    assert (after["Cannot comply"], after["Outstanding"]) == (3, 1)


def test_a_wrong_answer_shows_on_the_kept_coverage_figures_at_once(client, story, admin, outsider):
    client.force_login(admin)
    url = reverse("bulletins:coverage", args=[story.pk])
    client.get(url)

    reading.answer_check(story, user=outsider, answers=[1], now=timezone.now())
    coverage.refresh_watched()
    page = client.get(url).content.decode()

    assert "<strong>4</strong> wrong answers by <strong>3</strong> people" in page


def test_an_order_without_questions_or_reports_shows_neither(client, pairing, admin):
    client.force_login(admin)

    page = client.get(reverse("bulletins:coverage", args=[pairing.pk])).content.decode()

    assert "Check of understanding" not in page
    assert "<dt>Implemented</dt>" not in page
    assert reverse("bulletins:implemented_board", args=[pairing.pk]) not in page
    assert _figures(page)["Cannot comply"] == 0


def test_the_api_gives_the_split(client, story, admin):
    client.force_login(admin)

    response = client.get(f"/api/v1/bulletins/{story.pk}/coverage")

    body = response.json()
    assert response.status_code == HTTPStatus.OK
    assert (body["acknowledged"], body["outstanding"]) == (3, 2)
    assert (body["cannot_comply_open"], body["cannot_comply_resolved"]) == (1, 1)
    assert (body["implemented"], body["implemented_required"]) == (1, 3)


# The command overview


def test_the_overview_ranks_open_cannot_comply_first(
    client, admin, agency, precinct17, officer, auxiliary, sergeant, reasons
):
    urgent = published_bulletin(admin, agency, priority=1, title="Nobody read this yet")
    routine = published_bulletin(admin, agency, priority=3, title="Routine, one answer")
    two = published_bulletin(admin, precinct17, priority=2, title="Priority, two answers")
    _answer(routine, officer, reasons, timezone.now())
    _answer(two, officer, reasons, timezone.now())
    resolved = _answer(two, auxiliary, reasons, timezone.now())
    _answer(two, sergeant, reasons, timezone.now())
    responses.resolve(resolved, by=admin, resolution="Paired", now=timezone.now())
    client.force_login(admin)

    rows = client.get(reverse("bulletins:overview")).context["rows"]

    assert [row["bulletin"].pk for row in rows] == [two.pk, routine.pk, urgent.pk]
    assert [row["cannot_comply"] for row in rows] == [2, 1, 0]
    # Who answered and has not acknowledged is not outstanding (the issuer acknowledged).
    assert [row["outstanding"] for row in rows[:2]] == [0, 2]


def test_the_overview_counts_open_answers_in_my_scope_only(
    client, admin, agency, officer, outsider, sergeant, reasons
):
    order = published_bulletin(admin, agency, priority=1)
    _answer(order, outsider, reasons, timezone.now())
    client.force_login(sergeant)

    rows = client.get(reverse("bulletins:overview")).context["rows"]
    page = client.get(reverse("bulletins:overview")).content.decode()

    assert [row["cannot_comply"] for row in rows] == [0]
    assert '<th scope="col">Cannot comply</th>' in page


def test_an_exercise_stays_out_of_the_overview_with_its_answers(
    client, admin, agency, officer, reasons
):
    drill = published_bulletin(admin, agency, is_exercise=True, title="Drill")
    _answer(drill, officer, reasons, timezone.now())
    client.force_login(admin)

    rows = client.get(reverse("bulletins:overview")).context["rows"]

    assert rows == []


# Evidence: the record and the CSV


def test_the_evidence_record_shows_the_answers_and_the_tries(client, story, admin, auxiliary):
    client.force_login(admin)
    url = reverse("bulletins:evidence", args=[story.pk, auxiliary.pk])

    page = client.get(url).content.decode()
    signed = client.get(url, {"format": "json"}).json()

    record = signed["record"]
    assert evidence.verify(signed)
    [answer] = record["responses"]
    assert answer["kind"] == "Cannot comply"
    assert answer["reason"] == "Equipment missing"
    assert answer["version"] == 1
    assert answer["resolution"] == "Radio issued at 08:40"
    assert answer["resolved_by"] == "Sgt. Dan Kowalski"
    assert len(answer["statement_sha256"]) == 64
    assert record["check_of_understanding"]["attempts"] == 1
    assert record["check_of_understanding"]["wrong"] == 1
    assert "Equipment missing" in page
    assert "Radio issued at 08:40" in page
    assert "Check of understanding: 1 try, 1 wrong" in page


def test_the_evidence_record_of_a_report(client, story, admin, sergeant):
    client.force_login(admin)
    url = reverse("bulletins:evidence", args=[story.pk, sergeant.pk])

    record = client.get(url, {"format": "json"}).json()["record"]
    page = client.get(url).content.decode()

    [report] = record["responses"]
    assert (report["kind"], report["note"]) == ("Implemented", "P.O. Diaz posted at the front door")
    assert record["check_of_understanding"] == {
        "attempts": 1, "wrong": 0, "right": 1,
        "tries": [{"at": record["check_of_understanding"]["tries"][0]["at"], "version": 1,
                   "passed": True}],
    }  # fmt: skip
    assert "P.O. Diaz posted at the front door" in page


def _csv(client, bulletin):
    response = client.get(reverse("bulletins:recipients_csv", args=[bulletin.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header = rows[0]
    return header, {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}


def test_the_csv_shows_the_answers_and_the_tries(client, story, admin):
    client.force_login(admin)

    header, rows = _csv(client, story)

    assert header == list(evidence.CSV_HEADER)
    officer = rows["officer@agency.test"]
    assert officer["state"] == "outstanding"
    assert officer["cannot comply"].endswith("No partner available (open)")
    assert officer["check of understanding"] == "2 tries, 2 wrong"
    auxiliary = rows["auxiliary@agency.test"]
    assert "Equipment missing (resolved " in auxiliary["cannot comply"]
    assert "Radio issued at 08:40" in auxiliary["cannot comply"]
    sergeant = rows["sergeant@agency.test"]
    assert sergeant["implemented at"]
    assert sergeant["implemented note"] == "P.O. Diaz posted at the front door"
    assert sergeant["check of understanding"] == "1 try, 0 wrong"
    assert rows["outsider@agency.test"]["cannot comply"] == ""


def test_the_evidence_record_names_the_template_it_started_from(client, admin, agency, officer):
    from bulletins.services import templates

    template = templates.create_template(
        by=admin, now=timezone.now(), agency=agency, name="All officers paired",
        suggested_units=[agency], title="All officers paired", instruction="Work in pairs.",
        body="", kind="order", priority=1, duration=None, review_interval=timedelta(hours=72),
        to_sworn=True, to_auxiliary=True, to_civilian=True, supervisors_only=False,
    )  # fmt: skip
    version = template.versions.get()
    order = published_bulletin(admin, agency, template_version=version)
    client.force_login(admin)
    url = reverse("bulletins:evidence", args=[order.pk, officer.pk])

    record = client.get(url, {"format": "json"}).json()["record"]
    page = client.get(url).content.decode()

    assert record["bulletin"]["started_from"] == "template All officers paired, version 1"
    assert "Started from template All officers paired, version 1" in page
    assert json.dumps(record)  # plain data


# The exercises page


def test_the_exercises_page_counts_cannot_comply_by_reason(
    client, admin, sergeant, precinct17, officer, auxiliary, outsider, reasons, precinct75
):
    drill = published_bulletin(sergeant, precinct17, is_exercise=True, title="Drill")
    other = published_bulletin(admin, [precinct17, precinct75], is_exercise=True, title="Two")
    _answer(drill, officer, reasons, timezone.now())
    _answer(drill, auxiliary, reasons, timezone.now(), "Other", detail="Sick")
    _answer(drill, officer, reasons, timezone.now(), "Equipment missing")
    _answer(other, outsider, reasons, timezone.now())
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:exercises"))

    rows = {row["bulletin"].pk: row for row in response.context["rows"]}
    assert rows[drill.pk]["cannot_comply"] == {
        "answers": 3,
        "reasons": [("No partner available", 1), ("Equipment missing", 1), ("Other", 1)],
    }
    # The outsider of the 75th is outside the sergeant's command.
    assert rows[other.pk]["cannot_comply"] == {"answers": 0, "reasons": []}
    page = response.content.decode()
    assert "3 cannot comply" in page

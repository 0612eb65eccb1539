"""Exercises: marked when written, never a real order, EXERCISE wherever they are read, and
counted apart - out of the coverage overview and the compliance exports, on their own page."""

import csv
import io
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from bulletins import evidence, exercises
from bulletins.forms import AmendForm
from bulletins.models import Bulletin
from bulletins.services import authoring, reading
from portal.models import User
from tests.factories import UserFactory, published_bulletin
from tests.test_api import bearer, draft_payload, post_json, token_for
from tests.test_bulletin_views import bulletin_form, text_of
from tests.test_cap import NS, SCHEMA, cap_url
from tests.test_notifications import deliver_all

pytestmark = pytest.mark.django_db

API = "/api/v1"
DRILL = "Station-house lockdown drill"


def exercise(by, units, **fields):
    return published_bulletin(by, units, **{"title": DRILL, "is_exercise": True, **fields})


@pytest.fixture
def supervisor75(precinct75):
    return UserFactory(
        email="sergeant75@agency.test",
        name="Sgt. Seventy-Five",
        unit=precinct75,
        role=User.Role.SUPERVISOR,
    )


# Marking: only when writing, and never a real order


def test_the_new_bulletin_form_marks_a_draft_as_an_exercise(client, sergeant, precinct17):
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:create"))
    response = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], is_exercise="on")
    )
    real = client.post(reverse("bulletins:create"), bulletin_form([precinct17]))

    assert "Exercise - training, not a real order" in text_of(page)
    assert response.status_code == real.status_code == HTTPStatus.FOUND
    assert sorted(Bulletin.objects.values_list("is_exercise", flat=True)) == [False, True]
    drill = Bulletin.objects.get(is_exercise=True)
    preview = client.get(reverse("bulletins:preview", args=[drill.pk]))
    assert "EXERCISE Training, not a real order" in text_of(preview)


def test_an_exercise_never_becomes_a_real_order_nor_a_real_order_an_exercise(
    sergeant, officer, precinct17
):
    drill = exercise(sergeant, precinct17)
    real = published_bulletin(sergeant, precinct17)
    now = timezone.now()

    with pytest.raises(ValidationError, match="never become a real order"):
        authoring.amend_bulletin(
            drill, by=sergeant, now=now, reason="Real now", is_material=True, is_exercise=False
        )
    with pytest.raises(ValidationError, match="never become a real order"):
        authoring.amend_bulletin(
            real, by=sergeant, now=now, reason="Drill", is_material=True, is_exercise=True
        )
    with pytest.raises(ValidationError):
        authoring.save_draft(
            by=sergeant, targets=[(precinct17, True)], now=now, bulletin=drill, is_exercise=False
        )

    assert "is_exercise" not in AmendForm.base_fields
    assert Bulletin.objects.get(pk=drill.pk).is_exercise is True
    assert Bulletin.objects.get(pk=real.pk).is_exercise is False
    assert Bulletin.objects.get(pk=drill.pk).version == 1


def test_the_api_drafts_an_exercise_and_its_amendments_keep_it_one(client, sergeant, precinct17):
    headers = bearer(token_for(sergeant, is_read_only=False))

    created = post_json(
        client, f"{API}/bulletins", draft_payload([precinct17], is_exercise=True), headers=headers
    )
    pk = created.json()["id"]
    post_json(client, f"{API}/bulletins/{pk}/publish", headers=headers)
    amended = post_json(
        client,
        f"{API}/bulletins/{pk}/amend",
        {
            "reason": "Both shifts",
            "is_material": True,
            "title": "Both shifts",
            "is_exercise": False,
        },
        headers=headers,
    )

    assert created.status_code == HTTPStatus.CREATED
    assert created.json()["is_exercise"] is True
    assert amended.status_code == HTTPStatus.OK
    assert amended.json()["version"] == 2
    assert amended.json()["is_exercise"] is True
    assert Bulletin.objects.get(pk=pk).is_exercise is True


# EXERCISE wherever it is read


def test_the_card_and_the_page_of_an_exercise_say_exercise(client, sergeant, officer, precinct17):
    drill = exercise(sergeant, precinct17)
    real = published_bulletin(sergeant, precinct17, title="Real order")
    client.force_login(officer)

    feed = client.get(reverse("bulletins:feed")).content.decode()
    page = client.get(reverse("bulletins:detail", args=[drill.pk]))
    real_page = client.get(reverse("bulletins:detail", args=[real.pk]))

    cards = feed.split('<li class="bulletin-card')[1:]
    drill_card = next(card for card in cards if DRILL in card)
    real_card = next(card for card in cards if "Real order" in card)
    assert "EXERCISE" in drill_card
    assert "EXERCISE" not in real_card
    assert f"<title>EXERCISE - {DRILL}" in page.content.decode()
    assert "EXERCISE Training, not a real order." in text_of(page)
    assert "EXERCISE" not in text_of(real_page)


def test_every_email_of_an_exercise_says_exercise_in_its_subject_and_body(
    sergeant, officer, precinct17
):
    drill = exercise(sergeant, precinct17)
    authoring.amend_bulletin(
        drill, by=sergeant, now=timezone.now(), reason="Both shifts", is_material=True,
        instruction="Lock the doors, both shifts.",
    )  # fmt: skip
    published_bulletin(sergeant, precinct17, title="Real order")

    deliver_all()

    drill_mail = [m for m in mail.outbox if DRILL in m.subject]
    real_mail = [m for m in mail.outbox if "Real order" in m.subject]
    assert len({m.subject for m in drill_mail}) == 2  # published and amended
    for message in drill_mail:
        assert message.subject.startswith("EXERCISE - ")
        assert message.body.startswith("EXERCISE - training, not a real order.")
        assert "EXERCISE - training, not a real order." in message.alternatives[0][0]
    assert real_mail
    for message in real_mail:
        assert "EXERCISE" not in message.subject + message.body + message.alternatives[0][0]


def test_cap_and_the_atom_feed_say_exercise(client, sergeant, officer, precinct17):
    drill = exercise(sergeant, precinct17)
    real = published_bulletin(sergeant, precinct17, title="Real order")
    client.force_login(officer)

    drill_cap = etree.fromstring(client.get(cap_url(drill, 1)).content)
    real_cap = etree.fromstring(client.get(cap_url(real, 1)).content)
    atom = etree.fromstring(client.get(reverse("bulletins:cap_feed")).content)

    SCHEMA.assertValid(drill_cap)
    assert drill_cap.findtext("cap:status", namespaces=NS) == "Exercise"
    assert drill_cap.findtext("cap:info/cap:headline", namespaces=NS) == f"EXERCISE - {DRILL}"
    assert real_cap.findtext("cap:status", namespaces=NS) == "Actual"
    assert real_cap.findtext("cap:info/cap:headline", namespaces=NS) == "Real order"
    titles = atom.xpath("atom:entry/atom:title/text()", namespaces=NS)
    assert sorted(titles) == sorted([f"EXERCISE - {DRILL}", "Real order"])


# Counted apart


@pytest.fixture
def drill_and_order(sergeant, officer, auxiliary, squad_officer, precinct17):
    """An exercise and a real order, both in force for the 17th; the officer acknowledged both."""
    t0 = timezone.now() - timedelta(hours=2)
    drill = exercise(sergeant, precinct17, now=t0)
    real = published_bulletin(sergeant, precinct17, title="Real order", now=t0)
    for bulletin in (drill, real):
        reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=t0 + timedelta(1 / 24))
    return drill, real


def test_the_coverage_overview_leaves_exercises_out(client, drill_and_order, sergeant, admin):
    drill, real = drill_and_order
    for viewer in (sergeant, admin):
        client.force_login(viewer)

        response = client.get(reverse("bulletins:overview"))

        assert [row["bulletin"].pk for row in response.context["rows"]] == [real.pk]
        assert DRILL not in response.text
        assert reverse("bulletins:exercises") in response.text


def test_an_exercise_keeps_its_coverage_page_saying_exercise(client, drill_and_order, sergeant):
    drill, _ = drill_and_order
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:coverage", args=[drill.pk]))

    assert response.status_code == HTTPStatus.OK
    assert "EXERCISE Training, not a real order" in text_of(response)


def test_the_compliance_exports_mark_an_exercise_and_a_person_record_leaves_it_out(
    client, drill_and_order, sergeant, officer
):
    drill, real = drill_and_order
    client.force_login(sergeant)

    def csv_rows(bulletin):
        response = client.get(reverse("bulletins:recipients_csv", args=[bulletin.pk]))
        body = b"".join(response.streaming_content).decode()
        return response, list(csv.reader(io.StringIO(body)))

    drill_csv, drill_rows = csv_rows(drill)
    real_csv, real_rows = csv_rows(real)
    record = client.get(
        reverse("bulletins:evidence", args=[drill.pk, officer.pk]), {"format": "json"}
    ).json()
    real_record = client.get(
        reverse("bulletins:evidence", args=[real.pk, officer.pk]), {"format": "json"}
    ).json()
    person = client.get(reverse("bulletins:person", args=[officer.pk]))

    assert f'filename="exercise-{drill.pk}-recipients.csv"' in drill_csv["Content-Disposition"]
    assert f'filename="bulletin-{real.pk}-recipients.csv"' in real_csv["Content-Disposition"]
    assert drill_rows[0] == list(evidence.CSV_HEADER)
    assert all(row[10].startswith("EXERCISE - ") for row in drill_rows[1:])
    assert next(row for row in drill_rows if row[1] == officer.email)[10] == (
        "EXERCISE - acknowledged"
    )
    assert not any("EXERCISE" in row[10] for row in real_rows[1:])
    assert record["record"]["bulletin"]["exercise"] is True
    assert evidence.verify(record)
    assert real_record["record"]["bulletin"]["exercise"] is False
    assert [r.bulletin_id for r in person.context["page"].object_list] == [real.pk]


# The Exercises page


def test_the_exercises_page_gives_the_times_to_50_90_and_100_percent(
    client, sergeant, officer, auxiliary, squad_officer, precinct17
):
    """Four told in the 17th: the sergeant (the issuer, acknowledging as he publishes), the
    officer after 10 minutes, the auxiliary after 30, the squad officer not yet: half by 10 min,
    nine in ten and everyone not reached - then the squad officer after 95 minutes."""
    t0 = timezone.now() - timedelta(hours=3)
    drill = exercise(sergeant, precinct17, now=t0)
    published_bulletin(sergeant, precinct17, title="Real order", now=t0)
    minute = timedelta(minutes=1)
    reading.acknowledge(drill.pk, user=officer, version_number=1, now=t0 + 10 * minute)
    reading.acknowledge(drill.pk, user=auxiliary, version_number=1, now=t0 + 30 * minute)
    client.force_login(sergeant)

    before = client.get(reverse("bulletins:exercises"))
    reading.acknowledge(drill.pk, user=squad_officer, version_number=1, now=t0 + 95 * minute)
    after = client.get(reverse("bulletins:exercises"))

    assert before.status_code == HTTPStatus.OK
    [row] = before.context["rows"]
    assert row["bulletin"] == drill
    assert (row["audience"], row["answered"], row["percent"]) == (4, 3, 75)
    assert row["reached"] == {50: 10 * minute, 90: None, 100: None}
    assert "10 min 0 s Not reached Not reached" in text_of(before)
    [row] = after.context["rows"]
    assert row["reached"] == {50: 10 * minute, 90: 95 * minute, 100: 95 * minute}
    assert "75% (3 of 4)" in text_of(before)
    assert "1 h 35 min 1 h 35 min" in text_of(after)
    assert reverse("bulletins:coverage", args=[drill.pk]) in after.text


def test_the_exercises_page_reads_its_figures_in_one_query(
    client, django_assert_max_num_queries, sergeant, officer, precinct17
):
    for number in range(5):
        drill = exercise(sergeant, precinct17, title=f"Drill {number}")
        reading.acknowledge(drill.pk, user=officer, version_number=1, now=timezone.now())
    client.force_login(sergeant)
    client.get(reverse("bulletins:exercises"))  # sessions and permissions warmed

    with django_assert_max_num_queries(12) as queries:
        response = client.get(reverse("bulletins:exercises"))

    assert len(response.context["rows"]) == 5
    figures = [q for q in queries.captured_queries if "percentile_disc" in q["sql"]]
    assert len(figures) == 1


def test_a_read_only_exercise_counts_who_opened_it(client, sergeant, officer, precinct17):
    t0 = timezone.now() - timedelta(hours=1)
    drill = exercise(sergeant, precinct17, kind="advisory", now=t0)
    reading.record_open(drill, drill.versions.get(), user=officer, now=t0 + timedelta(minutes=4))

    figures = exercises.results(sergeant, [drill.pk])

    assert figures[drill.pk]["answered"] == 1
    assert figures[drill.pk]["reached"][50] == timedelta(minutes=4)


def test_the_exercises_page_in_the_permission_matrix(
    client, drill_and_order, officer, sergeant, supervisor75, admin
):
    """Those who follow coverage, in their scope; no one else."""
    drill, _ = drill_and_order
    url = reverse("bulletins:exercises")

    assert client.get(url).status_code == HTTPStatus.FOUND  # signed out: to the sign-in page
    client.force_login(officer)
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    client.force_login(supervisor75)
    outside = client.get(url)
    assert outside.status_code == HTTPStatus.OK
    assert outside.context["rows"] == []
    assert DRILL not in outside.text
    client.force_login(supervisor75)
    assert client.get(reverse("bulletins:coverage", args=[drill.pk])).status_code == (
        HTTPStatus.NOT_FOUND
    )
    for viewer in (sergeant, admin):
        client.force_login(viewer)
        assert [row["bulletin"] for row in client.get(url).context["rows"]] == [drill]
    assert client.post(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_a_percentile_is_a_fraction():
    with pytest.raises(ValueError, match="fraction"):
        exercises.PercentileDisc("pk", 50)
    assert exercises.duration_text(timedelta(days=1, hours=3, minutes=5)) == "1 d 3 h"
    assert exercises.duration_text(timedelta(seconds=42)) == "42 s"

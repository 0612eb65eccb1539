"""Issue 19, points 2 and 18: Import roster and Units, in the portal's own layout.

The upload only previews (new people, changed people, people not in the file, units to create);
"Confirm" imports what the preview showed. A unit path with a typo is refused with the nearest
name unless "Create units that do not exist yet" is ticked, and the units it will create are
listed first. Every bad input is a clear message with nothing written.
"""

import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from portal import roster_views
from portal.models import AuditEvent, Unit, User
from tests.factories import PASSWORD, UserFactory, make_unit

pytestmark = pytest.mark.django_db

HEADER = "email,name,badge,rank,member_class,unit_path,role"
AGENCY = "Metro Police Department"
P17 = f"{AGENCY} / Manhattan South / 17th Precinct"
TYPO = f"{AGENCY} / Manhatan South / 17th Precinct"
SUGGESTION = (
    "no unit 'Manhatan South' under 'Metro Police Department'; did you mean 'Manhattan South'?"
)
IMPORT = reverse("people_import")
UNITS = reverse("people_units")


def upload(*rows, name="roster.csv", content=None, create_units=False, send_invites=False):
    content = "\n".join([HEADER, *rows]).encode() if content is None else content
    data = {"roster": SimpleUploadedFile(name, content, content_type="text/csv")}
    if create_units:
        data["create_units"] = "on"
    if send_invites:
        data["send_invites"] = "on"
    return data


def snapshot():
    return (User.objects.count(), Unit.objects.count(), AuditEvent.objects.count())


def row(n, path=P17, role="officer"):
    return f"p{n}@agency.test,Person {n},{7000 + n},Police Officer,sworn,{path},{role}"


# The import: upload, preview, confirm, result


def test_the_upload_shows_a_preview_and_writes_nothing(client, admin, officer, precinct17):
    client.force_login(admin)
    before = snapshot()

    preview = client.post(
        IMPORT,
        upload(
            row(1),
            f"{officer.email},{officer.name},{officer.badge},Detective,sworn,{P17},officer",
        ),
    )

    assert preview.status_code == HTTPStatus.OK
    assert preview.templates[0].name == "people/import_preview.html"
    assert [person.name for person in preview.context["preview"].new_people] == ["Person 1"]
    assert [u.differences for u in preview.context["preview"].updated_people] == [
        [("rank", officer.rank, "Detective")]
    ]
    assert "Nothing has been imported yet" in preview.text
    assert 'id="roster-new-people"' in preview.text
    assert "Confirm and import" in preview.text
    assert snapshot() == before


def test_confirm_imports_what_the_preview_showed_and_shows_the_result_once(
    client, admin, precinct17
):
    client.force_login(admin)
    preview = client.post(IMPORT, upload(row(1), row(2)))

    confirmed = client.post(IMPORT, {"pending": preview.context["pending"]})
    result = client.get(IMPORT)
    again = client.get(IMPORT)

    assert confirmed.status_code == HTTPStatus.FOUND
    assert confirmed.url == IMPORT
    assert set(User.objects.filter(badge__in=["7001", "7002"]).values_list("unit", flat=True)) == {
        precinct17.pk
    }
    event = AuditEvent.objects.get(action="roster.import")
    assert (event.actor, event.detail["created"], event.detail["source"]) == (
        admin,
        2,
        "roster.csv",
    )
    assert "Roster imported" in result.text
    assert "2 new people, 0 changed, 0 unchanged" in result.text
    assert "Roster imported" not in again.text


def test_a_unit_typo_is_refused_with_the_nearest_name_and_nothing_written(
    client, admin, precinct17
):
    client.force_login(admin)
    before = snapshot()

    response = client.post(IMPORT, upload(row(1), row(2), row(3), row(4), row(5), row(6, TYPO)))

    assert response.status_code == HTTPStatus.OK
    assert [(e.line, e.reason) for e in response.context["errors"]] == [(7, SUGGESTION)]
    assert escape(SUGGESTION) in response.text
    assert "The roster was not imported and nothing was changed" in response.text
    assert roster_views.PENDING_IMPORT not in client.session
    assert snapshot() == before


def test_create_units_lists_the_units_in_the_preview_then_creates_them_on_confirm(
    client, admin, precinct17
):
    client.force_login(admin)

    preview = client.post(IMPORT, upload(row(1), row(2, TYPO), create_units=True))
    nothing_yet = Unit.objects.filter(name="Manhatan South").exists()
    confirmed = client.post(IMPORT, {"pending": preview.context["pending"]})

    assert [unit.name for unit in preview.context["preview"].new_units] == [
        f"{AGENCY} / Manhatan South",
        TYPO,
    ]
    assert "Units to create (2)" in preview.text
    assert escape(TYPO) in preview.text
    assert not nothing_yet
    assert confirmed.status_code == HTTPStatus.FOUND
    assert User.objects.get(badge="7002").unit.path_names() == TYPO.split(" / ")
    assert AuditEvent.objects.get(action="roster.import").detail["new_units"] == [
        f"{AGENCY} / Manhatan South",
        TYPO,
    ]


def test_a_unit_to_create_that_the_preview_did_not_show_is_shown_again(client, admin, precinct17):
    client.force_login(admin)
    preview = client.post(IMPORT, upload(row(1), create_units=True))
    # Meanwhile someone renames the precinct: the import would now create "17th Precinct",
    # which the preview did not show, so nothing is written and the new preview shows it.
    Unit.objects.filter(pk=precinct17.pk).update(name="17th Pct")

    again = client.post(IMPORT, {"pending": preview.context["pending"]})
    nothing_yet = snapshot()
    confirmed = client.post(IMPORT, {"pending": again.context["pending"]})

    assert preview.context["preview"].new_units == []
    assert again.status_code == HTTPStatus.OK
    assert "Something changed since you last checked" in again.text
    assert [unit.name for unit in again.context["preview"].new_units] == [P17]
    assert nothing_yet[:2] == (User.objects.count() - 1, Unit.objects.count() - 1)
    assert confirmed.status_code == HTTPStatus.FOUND
    assert User.objects.get(badge="7001").unit.name == "17th Precinct"


def test_an_unknown_or_used_preview_changes_nothing(client, admin, precinct17):
    client.force_login(admin)
    preview = client.post(IMPORT, upload(row(1)))
    client.post(IMPORT, {"pending": preview.context["pending"]})
    before = snapshot()

    made_up = client.post(IMPORT, {"pending": "made-up"}, follow=True)
    replayed = client.post(IMPORT, {"pending": preview.context["pending"]})

    assert made_up.redirect_chain == [(IMPORT, HTTPStatus.FOUND)]
    assert "That preview is no longer current: nothing was changed" in made_up.text
    assert replayed.status_code == HTTPStatus.FOUND
    assert snapshot() == before


def test_leaving_the_preview_cancels_it(client, admin, precinct17):
    client.force_login(admin)
    preview = client.post(IMPORT, upload(row(1)))

    client.get(IMPORT)
    confirmed = client.post(IMPORT, {"pending": preview.context["pending"]})

    assert confirmed.status_code == HTTPStatus.FOUND
    assert not User.objects.filter(badge="7001").exists()


def test_invites_go_out_after_the_confirm_when_the_box_is_ticked(
    client, admin, precinct17, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    preview = client.post(IMPORT, upload(row(1), send_invites=True))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(IMPORT, {"pending": preview.context["pending"]})

    assert [message.to for message in mailoutbox] == [["p1@agency.test"]]
    assert "1 set-password email on the way" in client.get(IMPORT).text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose the roster file to upload."),
        (upload(content=b""), "The file is empty: choose the roster saved as CSV."),
        (upload(name="roster.pdf", content=b"%PDF-1.4"), "roster.pdf is not a CSV file"),
        (upload(content=b"\x89PNG\r\n\x00\x00"), "the file is not text saved as UTF-8"),
        (upload(content=b"\xff\xfeema\xe9l"), "the file is not text saved as UTF-8"),
        (upload(content=b"name,email\nA,a@x.test\n"), "header: missing column(s)"),
        (upload(row(1), "bad,B,1,PO,sworn,x,officer"), "email &#x27;bad&#x27; is not a valid"),
    ],
    ids=["no file", "empty", "wrong type", "binary", "not utf-8", "bad header", "bad row"],
)
def test_every_bad_upload_is_a_clear_message_with_nothing_written(
    client, admin, precinct17, data, message
):
    client.force_login(admin)
    before = snapshot()

    response = client.post(IMPORT, data)

    assert response.status_code == HTTPStatus.OK
    assert response.templates[0].name == "people/import.html"
    assert message in response.text
    assert roster_views.PENDING_IMPORT not in client.session
    assert snapshot() == before


def test_a_file_too_big_is_refused(client, admin, precinct17, monkeypatch):
    monkeypatch.setattr(roster_views, "MAX_ROSTER_BYTES", 100)
    client.force_login(admin)

    response = client.post(IMPORT, upload(row(1), row(2), row(3)))

    assert "a roster may be at most 100\xa0bytes" in response.text
    assert not User.objects.filter(badge="7001").exists()


# Rights: MANAGE_PEOPLE, within the admin's agency, a fresh sign-in to upload or confirm


@pytest.mark.parametrize("persona", ["officer", "sergeant", "auditor"])
@pytest.mark.parametrize("url", [IMPORT, UNITS])
def test_only_those_who_manage_people_reach_the_pages(client, persona, url, request, precinct17):
    person = (
        UserFactory(email="aud@agency.test", unit=precinct17, role=User.Role.AUDITOR)
        if persona == "auditor"
        else request.getfixturevalue(persona)
    )
    client.force_login(person)

    page = client.get(url)
    posted = client.post(url, upload(row(1)))

    assert page.status_code == HTTPStatus.FORBIDDEN
    assert posted.status_code in (HTTPStatus.FORBIDDEN, HTTPStatus.METHOD_NOT_ALLOWED)
    assert not User.objects.filter(badge="7001").exists()


@pytest.mark.parametrize("url", [IMPORT, UNITS])
def test_signed_out_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))


def test_an_agency_admin_imports_only_into_their_agency(client, admin, precinct17):
    make_unit("Nassau County PD")
    client.force_login(admin)

    response = client.post(IMPORT, upload(row(1, "Nassau County PD"), create_units=True))

    assert [(e.line, e.reason) for e in response.context["errors"]] == [
        (2, f"unit path must start with {AGENCY!r}")
    ]
    assert not User.objects.filter(badge="7001").exists()


def test_uploading_and_confirming_want_a_recent_sign_in(client, admin, precinct17):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        preview = client.post(IMPORT, upload(row(1)))
        traveller.shift(dt.timedelta(minutes=6))

        page = client.get(IMPORT)
        preview = client.post(IMPORT, upload(row(1)))
        resumed = client.post(preview.url, {"password": PASSWORD})

    assert page.status_code == HTTPStatus.OK
    assert preview.status_code == HTTPStatus.FOUND
    assert preview.url.startswith(reverse("account_reauthenticate"))
    assert resumed.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
    assert not User.objects.filter(badge="7001").exists()


def test_the_admin_import_url_leads_to_the_portal_page(client, superuser_in_agency):
    client.force_login(superuser_in_agency)

    response = client.get(reverse("admin:portal_user_import"))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == IMPORT


def test_a_superuser_may_import_into_any_agency(client, superuser_in_agency):
    make_unit("1st Precinct", parent=make_unit("Nassau County PD"))
    client.force_login(superuser_in_agency)

    preview = client.post(IMPORT, upload(row(1, "Nassau County PD / 1st Precinct")))
    client.post(IMPORT, {"pending": preview.context["pending"]})

    assert User.objects.get(badge="7001").agency.name == "Nassau County PD"


@pytest.fixture
def superuser_in_agency(agency):
    return UserFactory(
        email="root@agency.test", unit=agency, role=User.Role.ADMIN, is_staff=True,
        is_superuser=True,
    )  # fmt: skip


# Units: the tree of the admin's scope with its people counted


def test_units_shows_the_tree_with_direct_and_total_counts(
    client, admin, officer, auxiliary, sergeant, squad_officer, outsider
):
    nassau = make_unit("Nassau County PD")
    UserFactory(unit=nassau)
    UserFactory(unit=outsider.unit, is_active=False)
    client.force_login(admin)

    response = client.get(UNITS)

    units = {
        unit.name: (unit.direct, unit.total, unit.indent) for unit in response.context["units"]
    }
    assert units == {
        AGENCY: (1, 6, 0),
        "Manhattan South": (0, 4, 1),
        "17th Precinct": (3, 4, 2),
        "17th Precinct Anti-Crime": (1, 1, 3),
        "Brooklyn North": (0, 1, 1),
        "75th Precinct": (1, 1, 2),
    }
    precinct = officer.unit
    assert f'href="{reverse("people")}?unit={precinct.pk}"' in response.text
    assert "4 people in all" in response.text
    assert "3 in this unit itself, 1 in the units under it" in response.text
    assert 'class="unit-row depth-3"' in response.text
    assert "Nassau County PD" not in response.text


def test_units_counts_with_one_query_whatever_the_tree(
    client, admin, agency, django_assert_max_num_queries
):
    for number in range(30):
        unit = make_unit(f"Squad {number}", parent=agency)
        UserFactory(unit=unit)
    client.force_login(admin)
    client.get(UNITS)  # warm the session and the scope

    with django_assert_max_num_queries(12) as queries:
        response = client.get(UNITS)

    assert len(response.context["units"]) == 31
    counting = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counting) == 1

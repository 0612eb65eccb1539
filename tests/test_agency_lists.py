"""The Agency lists page: the agency's admins keep the default statement, the reasons for
"I cannot comply" and the topics; others are refused; bad input is a field error with nothing
saved; nothing is deleted (archived rows stay, no longer offered); every change is audited."""

from http import HTTPStatus

import pytest
from django.urls import reverse

from bulletins.models import AgencyPolicy, CannotComplyReason, Topic
from portal.models import AuditEvent, User
from tests.factories import UserFactory, make_unit

pytestmark = pytest.mark.django_db

URL = "/agency/lists/"


@pytest.fixture
def reasons(agency):
    return [
        CannotComplyReason.objects.create(agency=agency, label=label, position=position)
        for position, label in enumerate(("No partner available", "Equipment missing", "Other"))
    ]


def _offered(model, agency):
    field = "label" if model is CannotComplyReason else "name"
    rows = model.objects.filter(agency=agency, is_archived=False).order_by("position", "pk")
    return list(rows.values_list(field, flat=True))


def test_the_url_is_named():
    assert reverse("bulletins:agency_lists") == URL


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("officer", HTTPStatus.FORBIDDEN),
        ("sergeant", HTTPStatus.FORBIDDEN),
        ("outsider", HTTPStatus.FORBIDDEN),
        ("admin", HTTPStatus.OK),
    ],
)
def test_only_admins_open_the_page(request, client, persona, expected):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(URL)

    assert response.status_code == expected


@pytest.mark.parametrize("persona", ["officer", "sergeant"])
def test_nobody_else_changes_a_list(request, client, agency, persona):
    client.force_login(request.getfixturevalue(persona))

    response = client.post(URL, {"action": "add", "list": "topics", "name": "Crowd events"})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not Topic.objects.exists()


def test_an_auditor_is_refused(client, agency):
    auditor = UserFactory(unit=agency, role=User.Role.AUDITOR)
    client.force_login(auditor)

    assert client.get(URL).status_code == HTTPStatus.FORBIDDEN


def test_the_admin_sets_the_default_statement(client, admin, agency):
    client.force_login(admin)

    response = client.post(URL, {"action": "statement", "statement": " Read and understood. "})

    assert response.status_code == HTTPStatus.FOUND
    assert AgencyPolicy.objects.get(agency=agency).statement == "Read and understood."
    event = AuditEvent.objects.get(action="agency.statement")
    assert (event.actor, event.agency_id) == (admin, agency.pk)
    assert event.detail["after"] == "Read and understood."


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("s" * 301, "Ensure this value has at most 300 characters (it has 301)."),
        ("I have read\x07 it", "invisible control character"),
    ],
)
def test_a_bad_statement_is_a_field_error(client, admin, agency, statement, message):
    client.force_login(admin)

    response = client.post(URL, {"action": "statement", "statement": statement})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    errors = response.context["statement_form"].errors["statement"]
    assert any(message in error for error in errors)
    assert not AgencyPolicy.objects.exists()


def test_the_page_shows_the_default_statement_before_any_is_set(client, admin):
    client.force_login(admin)

    form = client.get(URL).context["statement_form"]

    assert form["statement"].value() == AgencyPolicy.DEFAULT_STATEMENT


def test_the_admin_adds_reasons_and_topics_in_order(client, admin, agency, reasons):
    client.force_login(admin)

    client.post(URL, {"action": "add", "list": "reasons", "name": "Injured"})
    client.post(URL, {"action": "add", "list": "topics", "name": "Patrol staffing"})

    assert _offered(CannotComplyReason, agency)[-1] == "Injured"
    assert _offered(Topic, agency) == ["Patrol staffing"]
    assert AuditEvent.objects.filter(action="agency.reason_add").count() == 1
    assert AuditEvent.objects.filter(action="agency.topic_add").count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required."),
        ("other", "There is already a reason with this name."),
        ("r" * 81, "Ensure this value has at most 80 characters (it has 81)."),
    ],
)
def test_a_bad_new_reason_is_a_field_error(client, admin, agency, reasons, name, message):
    client.force_login(admin)

    response = client.post(URL, {"action": "add", "list": "reasons", "name": name})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    reasons_list = response.context["lists"][0]
    assert message in reasons_list["add_form"].errors["name"]
    assert CannotComplyReason.objects.count() == 3


def test_a_name_taken_by_an_archived_row_says_restore_it(client, admin, agency, reasons):
    CannotComplyReason.objects.filter(label="Other").update(is_archived=True)
    client.force_login(admin)

    response = client.post(URL, {"action": "add", "list": "reasons", "name": "Other"})

    errors = response.context["lists"][0]["add_form"].errors["name"]
    assert errors == ["An archived reason has this name: restore it."]


def test_the_admin_renames_a_reason(client, admin, agency, reasons):
    client.force_login(admin)

    response = client.post(
        URL, {"action": "rename", "list": "reasons", "pk": reasons[2].pk, "name": "Something else"}
    )

    assert response.status_code == HTTPStatus.FOUND
    assert _offered(CannotComplyReason, agency)[2] == "Something else"
    assert AuditEvent.objects.get(action="agency.reason_rename").detail == {
        "before": "Other",
        "after": "Something else",
    }


def test_renaming_to_a_taken_name_shows_the_error_on_that_row(client, admin, agency, reasons):
    client.force_login(admin)

    response = client.post(
        URL,
        {"action": "rename", "list": "reasons", "pk": reasons[2].pk, "name": "Equipment missing"},
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    rows = response.context["lists"][0]["offered"]
    assert rows[2]["form"].errors["name"] == ["There is already a reason with this name."]
    assert not rows[1]["form"].errors
    assert _offered(CannotComplyReason, agency)[2] == "Other"


def test_the_admin_reorders_reasons(client, admin, agency, reasons):
    client.force_login(admin)

    client.post(URL, {"action": "up", "list": "reasons", "pk": reasons[2].pk})
    client.post(URL, {"action": "down", "list": "reasons", "pk": reasons[0].pk})

    assert _offered(CannotComplyReason, agency) == [
        "Other",
        "No partner available",
        "Equipment missing",
    ]


def test_moving_the_first_one_up_changes_nothing(client, admin, agency, reasons):
    client.force_login(admin)

    client.post(URL, {"action": "up", "list": "reasons", "pk": reasons[0].pk})

    assert _offered(CannotComplyReason, agency)[0] == "No partner available"
    assert not AuditEvent.objects.filter(action="agency.reason_move").exists()


def test_archived_rows_stay_but_are_no_longer_offered(client, admin, agency, reasons):
    client.force_login(admin)

    client.post(URL, {"action": "archive", "list": "reasons", "pk": reasons[1].pk})
    page = client.get(URL)

    assert _offered(CannotComplyReason, agency) == ["No partner available", "Other"]
    assert CannotComplyReason.objects.count() == 3
    archived = page.context["lists"][0]["archived"]
    assert [row["text"] for row in archived] == ["Equipment missing"]

    client.post(URL, {"action": "restore", "list": "reasons", "pk": reasons[1].pk})

    assert "Equipment missing" in _offered(CannotComplyReason, agency)
    assert AuditEvent.objects.filter(action="agency.reason_archive").count() == 2


def test_another_agencys_row_is_not_found(client, admin, reasons):
    other = make_unit("County Police")
    theirs = Topic.objects.create(agency=other, name="Patrol staffing")
    client.force_login(admin)

    response = client.post(URL, {"action": "archive", "list": "topics", "pk": theirs.pk})

    assert response.status_code == HTTPStatus.NOT_FOUND
    theirs.refresh_from_db()
    assert theirs.is_archived is False


@pytest.mark.parametrize(
    "data",
    [
        {"action": "add", "list": "people", "name": "x"},
        {"action": "explode", "list": "topics", "pk": "1"},
        {"action": "archive", "list": "topics", "pk": "one"},
        {"action": "archive", "list": "topics"},
    ],
)
def test_a_request_no_page_sends_is_a_bad_request(client, admin, agency, data):
    Topic.objects.create(agency=agency, name="Patrol staffing", pk=1)
    client.force_login(admin)

    response = client.post(URL, data)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert Topic.objects.get().is_archived is False


def test_a_superuser_picks_the_agency(client, agency):
    other = make_unit("County Police")
    superuser = UserFactory(unit=None, is_superuser=True)
    client.force_login(superuser)

    first = client.get(URL)
    client.post(URL, {"agency": other.pk, "action": "add", "list": "topics", "name": "Crowds"})

    assert first.status_code == HTTPStatus.OK
    assert first.context["agency"] == agency
    assert list(Topic.objects.values_list("agency", "name")) == [(other.pk, "Crowds")]


def test_the_admins_navigation_links_the_page(client, admin, officer):
    client.force_login(admin)
    admin_page = client.get(reverse("bulletins:feed")).content.decode()
    client.force_login(officer)
    officer_page = client.get(reverse("bulletins:feed")).content.decode()

    assert f'href="{URL}"' in admin_page
    assert f'href="{URL}"' not in officer_page


def test_the_page_reads_its_lists_in_a_few_queries(
    client, admin, agency, django_assert_max_num_queries
):
    for number in range(30):
        CannotComplyReason.objects.create(agency=agency, label=f"Reason {number}")
        Topic.objects.create(agency=agency, name=f"Topic {number}", is_archived=number % 2 == 0)
    client.force_login(admin)

    with django_assert_max_num_queries(25):
        response = client.get(URL)

    assert response.status_code == HTTPStatus.OK


def test_the_service_refuses_another_agencys_admin(agency):
    from django.core.exceptions import PermissionDenied
    from django.utils import timezone

    from bulletins.services import agency_lists

    other_admin = UserFactory(unit=make_unit("County Police"), role=User.Role.ADMIN)

    with pytest.raises(PermissionDenied):
        agency_lists.add_item(
            agency_lists.TOPICS, agency, by=other_admin, now=timezone.now(), name="Crowds"
        )

    assert not Topic.objects.exists()

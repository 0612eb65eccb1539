"""The implemented status board: by unit, each required reporter, reported or not, when (agency
local time) and with what note, in the viewer's scope; a 404 outside it."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from bulletins.models import Bulletin
from bulletins.services import responses
from portal.models import User
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db

NOTE = "Armed officer at the front door"


@pytest.fixture
def squad_sergeant(squad17):
    return UserFactory(
        email="squad-sergeant@agency.test",
        name="Sgt. Squad",
        unit=squad17,
        role=User.Role.SUPERVISOR,
    )


@pytest.fixture
def people(admin, officer, auxiliary, sergeant, outsider, sergeant75, squad_sergeant):
    return locals()


def _order(admin, agency, required, now):
    return published_bulletin(
        admin, agency, now=now, priority=1, implemented_from=required,
        implemented_prompt="Armed officer posted at each public entrance",
    )  # fmt: skip


def _report(order, person, at, note=NOTE):
    return responses.report_implemented(order, user=person, note=note, now=at)


def _board(client, order, **query):
    response = client.get(reverse("bulletins:implemented_board", args=[order.pk]), query)
    assert response.status_code == HTTPStatus.OK
    return response


@pytest.fixture
def by_unit(people, agency):
    """One report per unit, agency-wide: asked of the agency (its admin), the 17th, its
    anti-crime squad and the 75th (their supervisors; the 17th has two, still one report); the
    17th and the squad reported."""
    UserFactory(name="Lt. Second", unit=people["sergeant"].unit, role=User.Role.SUPERVISOR)
    now = timezone.now()
    order = _order(people["admin"], agency, "units", now - timedelta(hours=1))
    first = _report(order, people["sergeant"], now - timedelta(minutes=40))
    _report(order, people["squad_sergeant"], now - timedelta(minutes=30), note="")
    order.first = first
    return order


def test_the_board_by_unit_lists_each_unit_reported_or_not(client, by_unit, admin):
    client.force_login(admin)

    response = _board(client, by_unit)

    context = response.context
    assert context["summary"]["implemented"] == 2
    assert context["summary"]["implemented_required"] == 4
    assert context["summary"]["not_reported"] == 2
    rows = [(row["unit"].name, len(row["reports"])) for row in context["units"]]
    assert rows == [
        ("Metro Police Department", 0),
        ("17th Precinct", 1),
        ("17th Precinct Anti-Crime", 1),
        ("75th Precinct", 0),
    ]
    page = response.content.decode()
    when = date_format(timezone.localtime(by_unit.first.created_at), "D d M H:i")
    assert "By Sgt. Dan Kowalski, Sergeant, <time" in page
    assert f'{when}</time>: "{NOTE}"' in page
    assert page.count("Not yet reported") == 2
    assert "Armed officer posted at each public entrance" in page


def test_the_board_counts_by_unit_roll_up_the_tree(client, by_unit, admin):
    client.force_login(admin)

    response = _board(client, by_unit)

    groups = response.context["groups"]
    figures = {
        group["row"]["unit"].name: (group["row"]["required"], group["row"]["implemented"])
        for group in groups
    }
    assert figures == {
        "Manhattan South": (2, 2),
        "Brooklyn North": (1, 0),
        "Metro Police Department": (1, 0),  # the admin, attached to the agency itself
    }
    assert response.context["top"]["required"] == 4


def test_a_sergeant_sees_his_own_units_only(client, by_unit, sergeant):
    client.force_login(sergeant)

    response = _board(client, by_unit)

    units = [row["unit"].name for row in response.context["units"]]
    assert units == ["17th Precinct", "17th Precinct Anti-Crime"]
    assert response.context["summary"]["implemented"] == 2
    assert response.context["summary"]["implemented_required"] == 2


def test_supervisors_only_lists_each_supervisor(client, people, agency, admin, sergeant):
    now = timezone.now()
    order = _order(admin, agency, "supervisors", now - timedelta(hours=1))
    _report(order, sergeant, now - timedelta(minutes=5))
    client.force_login(admin)

    everyone = _board(client, order)
    missing = _board(client, order, reported="no")
    done = _board(client, order, reported="yes")

    def names(response):
        return [(row.user.name, row.report is not None) for row in response.context["page"]]

    assert names(everyone) == [
        ("Chief Admin", False),
        ("Sgt. Dan Kowalski", True),
        ("Sgt. Squad", False),
        ("Sgt. Ana Ruiz", False),
    ]
    assert [name for name, _ in names(missing)] == ["Chief Admin", "Sgt. Squad", "Sgt. Ana Ruiz"]
    assert names(done) == [("Sgt. Dan Kowalski", True)]
    assert (everyone.context["summary"]["implemented"], everyone.context["summary"][
        "implemented_required"]) == (1, 4)  # fmt: skip
    assert NOTE in everyone.content.decode()


def test_everyone_gives_the_counts_by_unit_and_the_list(client, people, agency, admin, officer):
    now = timezone.now()
    order = _order(admin, agency, "everyone", now - timedelta(hours=1))
    _report(order, officer, now - timedelta(minutes=5), note="Done at the start of the tour")
    client.force_login(admin)

    response = _board(client, order)
    missing = _board(client, order, reported="no")

    assert response.context["summary"]["implemented"] == 1
    assert response.context["summary"]["implemented_required"] == 7
    assert response.context["page"].paginator.count == 7
    assert missing.context["page"].paginator.count == 6
    assert officer.pk not in [row.user_id for row in missing.context["page"]]
    assert "Done at the start of the tour" in response.content.decode()
    assert "Everyone asked (7)" in response.content.decode()


def test_an_unknown_filter_shows_everyone(client, people, admin, agency):
    order = _order(admin, agency, "supervisors", timezone.now())
    client.force_login(admin)

    response = _board(client, order, reported="maybe", page="x")

    assert response.context["shown"] == ""
    assert response.context["page"].paginator.count == 4


def test_a_board_is_a_404_outside_my_scope_and_for_an_order_asking_no_report(
    client, people, admin, precinct75, precinct17, sergeant
):
    theirs = _order(admin, precinct75, "units", timezone.now())
    no_report = published_bulletin(sergeant, precinct17)
    advisory = published_bulletin(sergeant, precinct17, kind="advisory")
    Bulletin.objects.filter(pk=advisory.pk).update(implemented_from="everyone")
    client.force_login(sergeant)

    statuses = [
        client.get(reverse("bulletins:implemented_board", args=[pk])).status_code
        for pk in (theirs.pk, no_report.pk, advisory.pk, 10**9)
    ]

    assert statuses == [HTTPStatus.NOT_FOUND] * 4


def test_officers_may_not_see_a_board(client, by_unit, officer):
    client.force_login(officer)

    response = client.get(reverse("bulletins:implemented_board", args=[by_unit.pk]))

    assert response.status_code == HTTPStatus.FORBIDDEN


def test_the_coverage_page_links_to_the_board(client, by_unit, admin):
    client.force_login(admin)

    page = client.get(reverse("bulletins:coverage", args=[by_unit.pk])).content.decode()

    assert reverse("bulletins:implemented_board", args=[by_unit.pk]) in page
    assert "2 of 4" in page


def _queries(client, url):
    """Queries of the page, once the kept banners and menus the data changed are read again."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == HTTPStatus.OK
    return len(captured)


@pytest.mark.parametrize("required", ["units", "supervisors", "everyone"])
def test_the_board_runs_the_same_few_queries_at_any_volume(
    client, people, admin, agency, precinct17, precinct75, required
):
    order = _order(admin, agency, required, timezone.now() - timedelta(hours=1))
    url = reverse("bulletins:implemented_board", args=[order.pk])
    client.force_login(admin)
    _report(order, people["sergeant"], timezone.now())  # one answer: the figures look for more
    small = _queries(client, url)

    from bulletins.services import authoring

    for unit in (precinct17, precinct75):
        UserFactory.create_batch(6, unit=unit, role=User.Role.SUPERVISOR)
    authoring.add_recipients(order, order.members(), now=timezone.now())
    for person in User.objects.filter(unit=precinct17, role=User.Role.SUPERVISOR):
        _report(order, person, timezone.now())
    big = _queries(client, url)

    assert big == small
    assert small <= 20

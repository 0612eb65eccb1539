"""People and units: the unit tree, the role/scope matrix, personal preferences."""

from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bulletins import permissions
from bulletins.models import audience_members
from portal import scope
from portal.models import AuditEvent, Unit, User
from tests.factories import UserFactory, make_unit

pytestmark = pytest.mark.django_db


def _reached(unit):
    """The ids of the people an audience of `unit` and its subtree reaches."""
    everyone = audience_members(
        [(unit, True)], classes=list(User.MemberClass), supervisors_only=False
    )
    return set(everyone.values_list("pk", flat=True))


def test_a_subtree_at_depth_four_is_one_query(agency, manhattan, precinct17, squad17, precinct75):
    post = make_unit("Midtown Foot Post", parent=squad17, kind=Unit.Kind.SQUAD)
    member = UserFactory(unit=post)
    control = UserFactory(unit=precinct75)

    with CaptureQueriesContext(connection) as queries:
        units = set(manhattan.subtree().values_list("name", flat=True))
        members = _reached(manhattan)

    assert post.depth == 5
    assert units == {"Manhattan South", "17th Precinct", "17th Precinct Anti-Crime", post.name}
    assert member.pk in members
    assert control.pk not in members
    assert len(queries) == 2


def test_moving_a_unit_keeps_the_tree_consistent(agency, manhattan, brooklyn, precinct17, squad17):
    member = UserFactory(unit=squad17)

    Unit.objects.move(
        Unit.objects.get(pk=precinct17.pk), Unit.objects.get(pk=brooklyn.pk), "last-child"
    )

    moved = Unit.objects.get(pk=squad17.pk)
    assert moved.path.startswith(Unit.objects.get(pk=brooklyn.pk).path)
    assert member.pk in _reached(Unit.objects.get(pk=brooklyn.pk))
    assert member.pk not in _reached(Unit.objects.get(pk=manhattan.pk))


@pytest.mark.parametrize(
    ("persona", "unit", "author", "coverage", "manage_person"),
    [
        ("officer", "precinct17", False, False, False),
        ("auxiliary", "precinct17", False, False, False),
        ("sergeant", "precinct17", True, True, False),
        ("sergeant", "squad17", True, True, False),
        ("sergeant", "precinct75", False, False, False),
        ("sergeant", "agency", False, False, False),
        ("outsider", "precinct75", False, False, False),
        ("admin", "precinct17", True, True, True),
        ("admin", "precinct75", True, True, True),
        ("admin", "agency", True, True, True),
    ],
)
def test_role_and_scope_matrix(request, squad17, persona, unit, author, coverage, manage_person):
    user = request.getfixturevalue(persona)
    target = request.getfixturevalue(unit)
    person = UserFactory(unit=target)

    assert permissions.can_author_for(user, target) is author
    assert (
        user.has_perm(permissions.VIEW_COVERAGE) and scope.is_in_scope(user, target)
    ) is coverage
    assert scope.can_manage_person(user, person) is manage_person


def test_an_admin_of_another_agency_acts_on_nothing_here(precinct17):
    other = make_unit("Nassau County Police Department", kind=Unit.Kind.AGENCY)
    other_admin = UserFactory(unit=other, role=User.Role.ADMIN)

    assert not permissions.can_author_for(other_admin, precinct17)
    assert not scope.scope_units(other_admin).filter(pk=precinct17.pk).exists()


def test_a_person_turns_non_urgent_email_off(client, officer):
    client.force_login(officer)

    page = client.get(reverse("email_preferences"))
    response = client.post(reverse("email_preferences"), {})

    assert page.status_code == HTTPStatus.OK
    assert "Urgent orders" in page.content.decode()
    assert response.status_code == HTTPStatus.FOUND
    officer.refresh_from_db()
    assert officer.wants_email is False
    assert AuditEvent.objects.filter(action="person.email_preference", actor=officer).exists()


def test_an_admin_marks_a_person_on_leave(client, admin, officer):
    client.force_login(admin)

    response = client.post(reverse("person_leave", args=[officer.pk]))

    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    officer.refresh_from_db()
    assert officer.is_on_leave is True
    assert AuditEvent.objects.filter(action="person.change", object_id=str(officer.pk)).exists()

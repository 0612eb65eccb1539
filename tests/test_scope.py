"""A person's scope, read in one query per request, and an admin's agency without its units."""

import pytest

from bulletins import permissions
from portal import scope
from portal.models import User
from tests.factories import UserFactory, make_unit, published_bulletin

pytestmark = pytest.mark.django_db


def fresh(user):
    """The person as a new request loads them: nothing of an earlier scope kept on the object."""
    return User.objects.get(pk=user.pk)


def test_a_supervisors_scope_and_their_own_unit_are_one_query(
    sergeant, precinct17, squad17, django_assert_num_queries
):
    user = fresh(sergeant)
    with django_assert_num_queries(1):
        root = scope.scope_root(user)
        ids = scope.scope_unit_ids(user)
        unit_name = user.unit.name

    assert root == precinct17
    assert set(ids) == {precinct17.pk, squad17.pk}
    assert unit_name == precinct17.name


def test_an_admins_root_and_own_unit_are_one_query_and_their_units_one_more(
    admin, agency, manhattan, django_assert_num_queries
):
    user = fresh(admin)
    with django_assert_num_queries(1):
        assert scope.scope_root(user) == agency
        assert user.unit == admin.unit
    with django_assert_num_queries(1):
        ids = scope.scope_unit_ids(user)

    assert agency.pk in ids and manhattan.pk in ids


def test_an_admin_whose_kept_agency_is_stale_still_gets_the_agency_of_their_unit(
    admin, agency, manhattan, sergeant, precinct17
):
    elsewhere = make_unit("County Police")
    their_own = published_bulletin(sergeant, precinct17, title="Pair up in the 17th")
    other_admin = UserFactory(unit=elsewhere, role=User.Role.ADMIN)
    others = published_bulletin(other_admin, elsewhere, title="County order")
    # An admin of the borough's office whose kept agency went wrong, somehow.
    User.objects.filter(pk=admin.pk).update(unit=manhattan, agency=elsewhere)

    user = fresh(admin)

    assert scope.scope_root(user) == agency
    tracked = set(permissions.trackable_bulletins(user).values_list("pk", flat=True))
    assert their_own.pk in tracked
    assert others.pk not in tracked


def test_an_admin_follows_whoever_their_agencys_bulletins_told_and_nobody_elses(
    admin, agency, sergeant, precinct17
):
    from bulletins.models import Recipient

    elsewhere = make_unit("County Police")
    other_admin = UserFactory(unit=elsewhere, role=User.Role.ADMIN)
    UserFactory(unit=elsewhere)
    ours = published_bulletin(sergeant, precinct17, title="Pair up in the 17th")
    theirs = published_bulletin(other_admin, elsewhere, title="County order")

    everyone = Recipient.objects.filter(bulletin__in=[ours, theirs])
    followed = permissions.recipients_in_scope(fresh(admin), everyone)

    assert followed.count() == Recipient.objects.filter(bulletin=ours).count() > 0
    assert not followed.filter(bulletin=theirs).exists()


def test_one_bulletins_people_in_an_admins_scope_are_read_without_a_join_to_bulletins(
    admin, agency, sergeant, precinct17, squad17
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    elsewhere = make_unit("County Police")
    other_admin = UserFactory(unit=elsewhere, role=User.Role.ADMIN)
    UserFactory(unit=elsewhere)
    ours = published_bulletin(sergeant, precinct17, title="Pair up in the 17th")
    theirs = published_bulletin(other_admin, elsewhere, title="County order")
    user = fresh(admin)
    scope.scope_root(user)

    with CaptureQueriesContext(connection) as captured:
        told = list(permissions.bulletin_recipients_in_scope(user, ours))
    # A bulletin published since the statistics were taken is estimated at one row: a join
    # to the bulletins then costs a lookup per person told (seen at 36,000 people: 350 ms).
    assert len(captured) == 1 and "bulletins_bulletin" not in captured[0]["sql"]
    assert {row.user_id for row in told} == set(ours.recipients.values_list("user_id", flat=True))
    assert len(told) > 0
    assert not permissions.bulletin_recipients_in_scope(user, theirs).exists()
    assert not permissions.bulletin_recipients_in_scope(fresh(other_admin), ours).exists()


def test_one_bulletins_people_in_a_supervisors_scope_are_those_of_their_units(
    sergeant, precinct17, precinct75, squad17, agency, admin
):
    from tests.factories import UserFactory as People

    People.create_batch(2, unit=precinct17)
    People.create_batch(2, unit=squad17)
    People.create_batch(3, unit=precinct75)
    order = published_bulletin(admin, agency, title="Pair up everywhere")

    told = permissions.bulletin_recipients_in_scope(fresh(sergeant), order)

    units = set(told.values_list("unit_id", flat=True))
    assert units == {precinct17.pk, squad17.pk}
    assert told.count() == order.recipients.filter(unit__in=[precinct17, squad17]).count()

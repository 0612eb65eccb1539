"""Issue 19, point 18: the people pages in the portal's own layout (the list, a person's record
and its actions), and the Django admin kept for superusers."""

import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal import audit
from portal.models import AuditEvent, Lockout, User
from tests.factories import UserFactory, make_unit

pytestmark = pytest.mark.django_db

ACTIONS = ("person_move", "person_role", "person_leave", "person_unlock", "person_deactivate")


@pytest.fixture
def superuser(precinct17):
    return UserFactory(email="root@agency.test", name="Root", unit=precinct17,
                       role=User.Role.ADMIN, is_superuser=True, is_staff=True)  # fmt: skip


@pytest.fixture
def stranger(db):
    return UserFactory(email="stranger@nassau.test", name="Stranger",
                       unit=make_unit("Nassau County PD"))  # fmt: skip


def lock(person):
    now = timezone.now()
    Lockout.objects.create(
        login=person.email, failures=5, first_failed_at=now, last_failed_at=now, locked_at=now
    )


def listed(response):
    return [person.name for person in response.context["page"].object_list]


def people_page(client, **query):
    return client.get(reverse("people"), query)


# The list


def test_the_list_holds_the_people_in_scope_only(
    client, admin, officer, sergeant, outsider, squad_officer, stranger, superuser
):
    client.force_login(admin)

    response = people_page(client)

    assert response.status_code == HTTPStatus.OK
    assert sorted(listed(response)) == sorted(
        [admin.name, officer.name, sergeant.name, outsider.name, squad_officer.name]
    )
    assert reverse("bulletins:person", args=[officer.pk]) in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lopez", ["Maria Lopez"]),
        ("officer@agency", ["Maria Lopez"]),
        ("MARIA lop", ["Maria Lopez"]),
        ("70017", ["Maria Lopez"]),
        ("7001", []),  # a badge is matched whole
        ("nobody", []),
    ],
)
def test_one_box_searches_name_email_and_badge(client, admin, officer, sergeant, query, expected):
    User.objects.filter(pk=officer.pk).update(badge="70017")
    client.force_login(admin)

    assert listed(people_page(client, q=query)) == expected


def test_a_unit_filter_takes_in_the_units_under_it(
    client, admin, officer, outsider, squad_officer, precinct17
):
    client.force_login(admin)

    response = people_page(client, unit=precinct17.pk)
    searched = people_page(client, q="lopez")

    assert sorted(listed(response)) == sorted([officer.name, squad_officer.name])
    assert "<details open>" in response.text  # the filters in use are shown
    assert "<details>" in searched.text


def test_filters_by_class_role_leave_lock_and_status(
    client, admin, officer, auxiliary, sergeant, outsider
):
    User.objects.filter(pk=outsider.pk).update(is_on_leave=True)
    User.objects.filter(pk=auxiliary.pk).update(is_active=False)
    lock(officer)
    client.force_login(admin)

    assert listed(people_page(client, member_class="auxiliary")) == []
    assert listed(people_page(client, member_class="auxiliary", status="deactivated")) == [
        auxiliary.name
    ]
    assert listed(people_page(client, role="supervisor")) == [sergeant.name]
    assert listed(people_page(client, on_leave="yes")) == [outsider.name]
    assert listed(people_page(client, locked="yes")) == [officer.name]
    assert officer.name not in listed(people_page(client, locked="no"))
    assert "Sign-in locked" in people_page(client, locked="yes").text


def test_a_lock_that_ran_out_is_not_listed_as_locked(client, settings, admin, officer):
    settings.LOCKOUT_AUTO_UNLOCK_MINUTES = 30
    lock(officer)
    Lockout.objects.update(locked_at=timezone.now() - dt.timedelta(minutes=31))
    client.force_login(admin)

    assert listed(people_page(client, locked="yes")) == []


def test_a_bad_filter_is_a_field_error_and_the_others_still_apply(
    client, admin, officer, sergeant, stranger
):
    client.force_login(admin)

    response = people_page(client, unit=stranger.unit_id, role="supervisor", on_leave="maybe")

    assert response.status_code == HTTPStatus.OK
    assert set(response.context["form"].errors) == {"unit", "on_leave"}
    assert response.text.count('class="errorlist"') == 2
    assert listed(response) == [sergeant.name]


def test_the_list_is_paginated(client, admin, precinct17):
    UserFactory.create_batch(55, unit=precinct17)
    client.force_login(admin)

    first, second = people_page(client), people_page(client, page=2)

    assert (len(listed(first)), len(listed(second))) == (50, 6)


def test_the_list_costs_the_same_queries_for_3_or_50_people(
    client, admin, officer, precinct17, django_assert_num_queries
):
    client.force_login(admin)
    query = {"q": "a", "unit": precinct17.pk, "role": "officer"}
    people_page(client, **query)  # sessions and the like warmed up
    with CaptureQueriesContext(connection) as few:
        people_page(client, **query)
    for number in range(60):
        lock(UserFactory(name=f"Alan {number}", unit=precinct17, is_on_leave=number % 2))

    with django_assert_num_queries(len(few)):
        response = people_page(client, **query)

    assert len(listed(response)) == 50


@pytest.mark.parametrize("persona", ["officer", "sergeant"])
def test_those_who_do_not_manage_people_are_refused_the_list(client, persona, request):
    client.force_login(request.getfixturevalue(persona))

    assert people_page(client).status_code == HTTPStatus.FORBIDDEN


def test_the_navigation_shows_people_to_admins_and_the_django_admin_to_superusers(
    client, admin, sergeant, superuser
):
    pages = {}
    for person in (admin, sergeant, superuser):
        client.force_login(person)
        pages[person.name] = client.get(reverse("bulletins:feed")).text

    people_link = f'href="{reverse("people")}"'
    admin_link = f'href="{reverse("admin:index")}"'
    assert people_link in pages[admin.name] and admin_link not in pages[admin.name]
    assert people_link not in pages[sergeant.name] and admin_link not in pages[sergeant.name]
    assert admin_link in pages[superuser.name]


# The record


def test_the_record_shows_who_they_are_their_sign_ins_and_the_actions(client, admin, officer):
    audit.record("auth.sign_in", by=officer)
    audit.record("auth.sign_in_failed", obj=officer, outcome="failure")
    audit.record("auth.sign_in", by=admin)  # someone else's
    lock(officer)
    client.force_login(admin)

    response = client.get(reverse("bulletins:person", args=[officer.pk]))

    html = response.text
    assert "Metro Police Department / Manhattan South / 17th Precinct" in html
    assert "<strong>Locked</strong>" in html
    assert [event.action for event in response.context["sign_ins"]] == [
        "auth.sign_in_failed",
        "auth.sign_in",
    ]
    for name in ACTIONS:
        assert reverse(name, args=[officer.pk]) in html


def test_a_supervisor_sees_the_record_without_sign_ins_or_actions(client, sergeant, officer):
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:person", args=[officer.pk]))

    assert response.status_code == HTTPStatus.OK
    assert "sign_ins" not in response.context
    assert reverse("person_move", args=[officer.pk]) not in response.text


@pytest.mark.parametrize("target", ["superuser", "stranger"])
def test_an_agency_admin_manages_no_superuser_and_finds_no_stranger(client, admin, target, request):
    person = request.getfixturevalue(target)
    client.force_login(admin)

    response = client.get(reverse("bulletins:person", args=[person.pk]))

    if target == "stranger":
        assert response.status_code == HTTPStatus.NOT_FOUND
    else:
        assert response.context["can_manage"] is False
        assert reverse("person_move", args=[person.pk]) not in response.text


def test_an_admin_is_not_offered_to_change_their_own_role_or_deactivate_themselves(client, admin):
    client.force_login(admin)

    html = client.get(reverse("bulletins:person", args=[admin.pk])).text

    assert reverse("person_move", args=[admin.pk]) in html
    assert reverse("person_role", args=[admin.pk]) not in html
    assert reverse("person_deactivate", args=[admin.pk]) not in html


# The actions


def post(client, name, person, data=None):
    return client.post(reverse(name, args=[person.pk]), data or {})


def test_move_to_a_unit_in_scope(client, admin, officer, precinct75):
    client.force_login(admin)

    page = client.get(reverse("person_move", args=[officer.pk]))
    response = post(client, "person_move", officer, {"unit": precinct75.pk})

    assert page.status_code == HTTPStatus.OK
    assert "Move" in page.text
    assert response.url == reverse("bulletins:person", args=[officer.pk])
    officer.refresh_from_db()
    assert officer.unit == precinct75
    event = AuditEvent.objects.get(action="person.change")
    assert (event.actor, event.detail["unit"]) == (admin, precinct75.pk)


@pytest.mark.parametrize("where", ["other agency", "same unit"])
def test_a_bad_move_is_a_field_error_and_changes_nothing(client, admin, officer, stranger, where):
    unit = stranger.unit if where == "other agency" else officer.unit
    client.force_login(admin)

    response = post(client, "person_move", officer, {"unit": unit.pk})

    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors["unit"]
    officer.refresh_from_db()
    assert officer.unit.name == "17th Precinct"
    assert not AuditEvent.objects.filter(action="person.change").exists()


def test_change_role(client, admin, officer):
    client.force_login(admin)

    response = post(client, "person_role", officer, {"role": "supervisor"})

    assert response.status_code == HTTPStatus.FOUND
    officer.refresh_from_db()
    assert officer.role == User.Role.SUPERVISOR
    assert AuditEvent.objects.get(action="person.change").detail["role"] == "supervisor"


@pytest.mark.parametrize(("role", "allowed"), [("supervisor", True), ("admin", False),
                                               ("auditor", False)])  # fmt: skip
def test_no_one_gives_a_role_that_can_do_more_than_their_own(
    client, sergeant, officer, role, allowed
):
    """A supervisor granted managing people besides their role: no admin, no auditor."""
    sergeant.user_permissions.add(Permission.objects.get(codename="manage_people"))
    client.force_login(sergeant)

    response = post(client, "person_role", officer, {"role": role})

    officer.refresh_from_db()
    assert (officer.role == role) is allowed
    if not allowed:
        assert response.context["form"].errors["role"] == ["You cannot give this role."]


@pytest.mark.parametrize(("name", "data"), [("person_role", {"role": "officer"}),
                                            ("person_deactivate", {})])  # fmt: skip
def test_an_admin_cannot_change_their_own_role_or_deactivate_themselves(client, admin, name, data):
    client.force_login(admin)

    response = post(client, name, admin, data)

    assert response.status_code == HTTPStatus.OK
    assert "yourself" in str(response.context["form"].errors)
    admin.refresh_from_db()
    assert (admin.role, admin.is_active) == (User.Role.ADMIN, True)


def test_put_on_leave_and_back(client, admin, officer):
    client.force_login(admin)

    confirm = client.get(reverse("person_leave", args=[officer.pk]))
    post(client, "person_leave", officer)
    officer.refresh_from_db()
    on_leave = officer.is_on_leave
    post(client, "person_leave", officer)

    assert "Put on leave" in confirm.text
    assert on_leave is True
    officer.refresh_from_db()
    assert officer.is_on_leave is False
    events = AuditEvent.objects.filter(action="person.change").order_by("id")
    assert [event.detail["is_on_leave"] for event in events] == [True, False]


def test_unlock(client, admin, officer):
    lock(officer)
    client.force_login(admin)

    response = post(client, "person_unlock", officer)
    again = post(client, "person_unlock", officer)

    assert response.status_code == HTTPStatus.FOUND
    assert not Lockout.objects.filter(login=officer.email).exists()
    assert AuditEvent.objects.get(action="account.unlock").actor == admin
    assert again.status_code == HTTPStatus.OK
    assert "is not locked" in str(again.context["form"].errors)


def test_deactivate_keeps_the_person(client, admin, officer):
    client.force_login(admin)

    response = post(client, "person_deactivate", officer)
    record = client.get(response.url)

    officer.refresh_from_db()
    assert officer.is_active is False
    assert AuditEvent.objects.get(action="person.deactivate").detail["people"] == [officer.pk]
    assert "Deactivated: cannot sign in" in record.text
    assert reverse("person_deactivate", args=[officer.pk]) not in record.text


@pytest.mark.parametrize("name", ACTIONS)
def test_a_get_changes_nothing(client, admin, officer, name):
    lock(officer)
    client.force_login(admin)

    response = client.get(reverse(name, args=[officer.pk]))

    assert response.status_code == HTTPStatus.OK
    assert '<button type="submit"' in response.text
    officer.refresh_from_db()
    assert (officer.is_active, officer.is_on_leave, officer.role) == (True, False, "officer")
    assert Lockout.objects.filter(login=officer.email).exists()


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize("target", ["superuser", "stranger"])
def test_an_agency_admin_reaches_no_superuser_and_no_stranger(
    client, admin, precinct17, name, target, request
):
    person = request.getfixturevalue(target)
    lock(person)
    before = (person.role, person.unit_id, person.is_active, person.is_on_leave)
    client.force_login(admin)

    shown = client.get(reverse(name, args=[person.pk]))
    posted = post(client, name, person, {"unit": precinct17.pk, "role": "officer"})

    assert (shown.status_code, posted.status_code) == (HTTPStatus.NOT_FOUND, HTTPStatus.NOT_FOUND)
    person.refresh_from_db()
    assert (person.role, person.unit_id, person.is_active, person.is_on_leave) == before
    assert Lockout.objects.filter(login=person.email).exists()
    assert not AuditEvent.objects.filter(action__startswith="person.").exists()


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize("persona", ["officer", "sergeant"])
def test_without_the_right_every_action_is_forbidden(client, persona, auxiliary, name, request):
    client.force_login(request.getfixturevalue(persona))

    shown = client.get(reverse(name, args=[auxiliary.pk]))
    posted = post(client, name, auxiliary, {"role": "admin"})

    assert (shown.status_code, posted.status_code) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    auxiliary.refresh_from_db()
    assert (auxiliary.role, auxiliary.is_active) == (User.Role.OFFICER, True)


@pytest.mark.parametrize(
    ("name", "data"),
    [("person_role", {"role": "admin"}), ("person_deactivate", {}), ("person_leave", {})],
)
def test_every_action_wants_a_recent_sign_in(client, admin, officer, name, data):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        traveller.shift(dt.timedelta(minutes=6))

        response = post(client, name, officer, data)

    assert response.url.startswith(reverse("account_reauthenticate"))
    officer.refresh_from_db()
    assert (officer.role, officer.is_active, officer.is_on_leave) == ("officer", True, False)


# The Django admin: superusers only


@pytest.mark.parametrize("url_name", ["admin:index", "admin:portal_user_changelist",
                                      "admin:portal_unit_changelist"])  # fmt: skip
def test_the_django_admin_refuses_an_agency_admin_and_serves_a_superuser(
    client, admin, superuser, url_name
):
    client.force_login(admin)
    refused = client.get(reverse(url_name))
    client.force_login(superuser)
    served = client.get(reverse(url_name))

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert served.status_code == HTTPStatus.OK

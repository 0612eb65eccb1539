"""Issue 19, point 18: what agency admins lost with the Django admin, back in the portal's own
pages: add a person, edit their details, send a link to set a password, reactivate. Same rules
as the other actions: MANAGE_PEOPLE (403), scope and superusers (404), a fresh sign-in for
changes, audited, field errors with nothing saved."""

import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from portal.forms import PersonFormMixin
from portal.models import AuditEvent, User
from tests.factories import UserFactory, make_unit

pytestmark = pytest.mark.django_db

P17 = "17th Precinct"


@pytest.fixture
def superuser(precinct17):
    return UserFactory(email="root@agency.test", name="Root", unit=precinct17,
                       role=User.Role.ADMIN, is_superuser=True, is_staff=True)  # fmt: skip


@pytest.fixture
def stranger(db):
    return UserFactory(email="stranger@nassau.test", name="Stranger",
                       unit=make_unit("Nassau County PD"))  # fmt: skip


def new_person(unit, changes=None):
    data = {
        "name": "Jo Newcomer",
        "email": "Jo.Newcomer@Agency.test",
        "badge": "88001",
        "rank": "Police Officer",
        "member_class": "sworn",
        "role": "officer",
        "unit": unit.pk,
        "wants_email": "on",
        "send_link": "on",
    }
    data.update(changes or {})
    return {name: value for name, value in data.items() if value is not None}


def details(person, **changes):
    data = {
        "name": person.name,
        "email": person.email,
        "badge": person.badge,
        "rank": person.rank,
        "member_class": person.member_class,
        "wants_email": "on" if person.wants_email else None,
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def snapshot(person):
    person.refresh_from_db()
    fields = ("name", "email", "badge", "rank", "member_class", "wants_email", "role", "unit_id")
    return tuple(getattr(person, name) for name in fields) + (person.is_active,)


def person_events():
    return AuditEvent.objects.filter(action__startswith="person.")


# Add a person


def test_the_people_list_offers_to_add_a_person(client, admin):
    client.force_login(admin)

    html = client.get(reverse("people")).text

    assert f'href="{reverse("person_add")}"' in html
    assert "Add a person" in html


def test_add_a_person_with_a_link_to_set_a_password(
    client, admin, precinct17, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(admin)

    form = client.get(reverse("person_add"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("person_add"), new_person(precinct17))

    assert form.status_code == HTTPStatus.OK
    assert 'id="id_send_link" checked' in form.text  # ticked by default
    person = User.objects.get(email="jo.newcomer@agency.test")  # lower-cased
    assert response.url == reverse("bulletins:person", args=[person.pk])
    assert (person.name, person.badge, person.unit, person.role) == (
        "Jo Newcomer", "88001", precinct17, "officer",
    )  # fmt: skip
    assert person.agency.name == "Metro Police Department"
    assert not person.has_usable_password()
    created = AuditEvent.objects.get(action="person.create")
    assert (created.actor, created.object_id) == (admin, str(person.pk))
    assert created.detail["unit"] == precinct17.pk and created.detail["role"] == "officer"
    assert AuditEvent.objects.get(action="person.password_link").object_id == str(person.pk)
    assert [message.to for message in mailoutbox] == [["jo.newcomer@agency.test"]]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


def test_add_a_person_without_sending_the_link_yet(
    client, admin, precinct17, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("person_add"), new_person(precinct17, {"send_link": None}))
    record = client.get(response.url)

    assert User.objects.filter(email="jo.newcomer@agency.test").exists()
    assert mailoutbox == []
    assert not AuditEvent.objects.filter(action="person.password_link").exists()
    person = User.objects.get(email="jo.newcomer@agency.test")
    assert reverse("person_password_link", args=[person.pk]) in record.text  # offered there


@pytest.mark.parametrize(
    ("case", "changes", "field"),
    [
        ("email in other case", {"email": "OFFICER@agency.TEST"}, "email"),
        ("badge in the agency", {"badge": "70017"}, "badge"),
        ("role above mine", {"role": "admin"}, "role"),
        ("unit outside scope", "stranger", "unit"),
        ("no unit", {"unit": ""}, "unit"),
        ("10,000-character name", {"name": "N" * 10_000}, "name"),
        ("bad email", {"email": "not-an-email"}, "email"),
    ],
)
def test_a_bad_new_person_is_a_field_error_and_nothing_is_saved(
    client, sergeant, officer, outsider, stranger, precinct17, mailoutbox, case, changes, field
):
    """A supervisor granted managing people: their scope is the 17th, their role a supervisor."""
    sergeant.user_permissions.add(Permission.objects.get(codename="manage_people"))
    User.objects.filter(pk=outsider.pk).update(badge="70017")  # in the 75th: same agency
    if changes == "stranger":
        changes = {"unit": stranger.unit_id}
    client.force_login(sergeant)
    before = User.objects.count()

    response = client.post(reverse("person_add"), new_person(precinct17, changes))

    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert list(errors) == [field]
    if field == "badge":  # the form's own check, before anything is written
        assert errors["badge"] == [
            "Badge 70017 already belongs to Pat Outsider (70017) in this agency."
        ]
    assert "Nothing was saved" in response.text
    assert User.objects.count() == before
    assert not person_events().exists()
    assert mailoutbox == []


def test_a_badge_is_unique_in_the_agency_only(client, admin, precinct17, stranger):
    User.objects.filter(pk=stranger.pk).update(badge="88001")  # another agency's
    client.force_login(admin)

    response = client.post(reverse("person_add"), new_person(precinct17))

    assert response.status_code == HTTPStatus.FOUND
    assert User.objects.get(email="jo.newcomer@agency.test").badge == "88001"


def test_only_roles_i_may_give_are_offered(client, sergeant, precinct17):
    sergeant.user_permissions.add(Permission.objects.get(codename="manage_people"))
    client.force_login(sergeant)

    form = client.get(reverse("person_add")).context["form"]

    assert [value for value, _ in form.fields["role"].choices] == ["officer", "supervisor"]
    assert list(form.fields["unit"].queryset.values_list("name", flat=True)) == [P17]


# Edit details


def test_edit_details(client, admin, officer):
    client.force_login(admin)

    form = client.get(reverse("person_edit", args=[officer.pk]))
    response = client.post(
        reverse("person_edit", args=[officer.pk]),
        details(officer, email="M.Lopez@Agency.test", rank="Detective", wants_email=None),
    )

    assert form.status_code == HTTPStatus.OK
    assert "role" not in form.context["form"].fields and "unit" not in form.context["form"].fields
    assert response.url == reverse("bulletins:person", args=[officer.pk])
    officer.refresh_from_db()
    assert (officer.email, officer.rank, officer.wants_email) == (
        "m.lopez@agency.test", "Detective", False,
    )  # fmt: skip
    event = AuditEvent.objects.get(action="person.change")
    assert (event.actor, event.object_id) == (admin, str(officer.pk))
    assert event.detail["fields"] == ["email", "rank", "wants_email"]


def test_saving_unchanged_details_records_nothing(client, admin, officer):
    client.force_login(admin)

    response = client.post(reverse("person_edit", args=[officer.pk]), details(officer))

    assert response.status_code == HTTPStatus.FOUND
    assert not person_events().exists()


def test_a_person_keeps_their_own_email_and_badge(client, admin, officer):
    client.force_login(admin)

    response = client.post(
        reverse("person_edit", args=[officer.pk]),
        details(officer, email=officer.email.upper(), name="Maria Lopez-Diaz"),
    )

    assert response.status_code == HTTPStatus.FOUND
    officer.refresh_from_db()
    assert (officer.name, officer.email) == ("Maria Lopez-Diaz", "officer@agency.test")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "OUTSIDER@AGENCY.test", "name": "Someone Else"}, "email"),
        ({"badge": "70075"}, "badge"),
        ({"name": "N" * 10_000}, "name"),
        ({"name": ""}, "name"),
        ({"member_class": "general"}, "member_class"),
    ],
)
def test_bad_details_are_a_field_error_and_nothing_is_saved(
    client, admin, officer, outsider, changes, field
):
    User.objects.filter(pk=outsider.pk).update(badge="70075")
    before = snapshot(officer)
    client.force_login(admin)

    response = client.post(reverse("person_edit", args=[officer.pk]), details(officer, **changes))

    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert list(errors) == [field]
    if field == "badge":  # the form's own check, before anything is written
        assert errors["badge"] == [
            "Badge 70075 already belongs to Pat Outsider (70075) in this agency."
        ]
    assert "Edit the details of Maria Lopez" in response.text  # not the refused name
    assert snapshot(officer) == before
    assert not person_events().exists()


def test_a_badge_taken_between_the_check_and_the_save_is_still_refused(
    client, admin, officer, outsider, monkeypatch
):
    """The form's check passed, then someone else took the badge: `people.save_person`
    refuses it, and the page shows it on the badge, nothing saved."""
    User.objects.filter(pk=outsider.pk).update(badge="70075")
    monkeypatch.setattr(PersonFormMixin, "clean", lambda form: form.cleaned_data)
    before = snapshot(officer)
    client.force_login(admin)

    response = client.post(
        reverse("person_edit", args=[officer.pk]), details(officer, badge="70075", rank="Det.")
    )

    assert response.status_code == HTTPStatus.OK
    assert "already belongs to Pat Outsider" in str(response.context["form"].errors["badge"])
    assert snapshot(officer) == before
    assert not person_events().exists()


# Send a link to set a password


def test_send_a_link_to_set_a_password(
    client, admin, officer, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    password_before = officer.password

    page = client.get(reverse("person_password_link", args=[officer.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("person_password_link", args=[officer.pk]))

    assert page.status_code == HTTPStatus.OK
    assert "officer@agency.test" in page.text
    assert 'type="password"' not in page.text
    assert response.url == reverse("bulletins:person", args=[officer.pk])
    assert [message.to for message in mailoutbox] == [["officer@agency.test"]]
    event = AuditEvent.objects.get(action="person.password_link")
    assert (event.actor, event.object_id) == (admin, str(officer.pk))
    officer.refresh_from_db()
    assert officer.password == password_before  # nothing set until they use the link


def test_a_get_of_the_link_page_sends_nothing(
    client, admin, officer, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(reverse("person_password_link", args=[officer.pk]))

    assert '<button type="submit"' in page.text
    assert mailoutbox == []
    assert not person_events().exists()


def test_no_link_for_a_deactivated_person(
    client, admin, officer, mailoutbox, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=officer.pk).update(is_active=False)
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("person_password_link", args=[officer.pk]))
    record = client.get(reverse("bulletins:person", args=[officer.pk]))

    assert response.status_code == HTTPStatus.OK
    assert "reactivate them first" in str(response.context["form"].errors)
    assert mailoutbox == []
    assert not person_events().exists()
    assert reverse("person_password_link", args=[officer.pk]) not in record.text


# Reactivate


def test_reactivate_a_deactivated_person(client, admin, officer):
    User.objects.filter(pk=officer.pk).update(is_active=False)
    client.force_login(admin)

    record = client.get(reverse("bulletins:person", args=[officer.pk]))
    page = client.get(reverse("person_reactivate", args=[officer.pk]))
    response = client.post(reverse("person_reactivate", args=[officer.pk]))
    after = client.get(response.url)

    assert "Deactivated: cannot sign in" in record.text
    assert reverse("person_reactivate", args=[officer.pk]) in record.text
    assert page.status_code == HTTPStatus.OK
    officer.refresh_from_db()
    assert officer.is_active is True
    event = AuditEvent.objects.get(action="person.reactivate")
    assert (event.actor, event.object_id) == (admin, str(officer.pk))
    assert reverse("person_reactivate", args=[officer.pk]) not in after.text
    assert reverse("person_deactivate", args=[officer.pk]) in after.text


def test_an_active_person_is_not_reactivated(client, admin, officer):
    client.force_login(admin)

    record = client.get(reverse("bulletins:person", args=[officer.pk]))
    response = client.post(reverse("person_reactivate", args=[officer.pk]))

    assert reverse("person_reactivate", args=[officer.pk]) not in record.text
    assert response.status_code == HTTPStatus.OK
    assert "already active" in str(response.context["form"].errors)
    assert not person_events().exists()


# Who may: 403 without the right, 404 outside the scope or for a superuser

PERSON_PAGES = {
    "person_edit": lambda person: details(person, name="Changed Name"),
    "person_password_link": lambda person: {},
    "person_reactivate": lambda person: {},
}


@pytest.mark.parametrize("name", PERSON_PAGES)
@pytest.mark.parametrize("persona", ["officer", "sergeant"])
def test_without_the_right_every_page_is_forbidden(
    client, persona, auxiliary, precinct17, mailoutbox, name, request
):
    User.objects.filter(pk=auxiliary.pk).update(is_active=name != "person_reactivate")
    before = snapshot(auxiliary)
    client.force_login(request.getfixturevalue(persona))

    shown = client.get(reverse(name, args=[auxiliary.pk]))
    posted = client.post(reverse(name, args=[auxiliary.pk]), PERSON_PAGES[name](auxiliary))
    add_shown = client.get(reverse("person_add"))
    added = client.post(reverse("person_add"), new_person(precinct17))

    statuses = {shown.status_code, posted.status_code, add_shown.status_code, added.status_code}
    assert statuses == {HTTPStatus.FORBIDDEN}
    assert snapshot(auxiliary) == before
    assert not User.objects.filter(email="jo.newcomer@agency.test").exists()
    assert mailoutbox == []


@pytest.mark.parametrize("name", PERSON_PAGES)
@pytest.mark.parametrize("target", ["superuser", "stranger"])
def test_an_agency_admin_reaches_no_superuser_and_no_stranger(
    client, admin, mailoutbox, name, target, request
):
    person = request.getfixturevalue(target)
    User.objects.filter(pk=person.pk).update(is_active=name != "person_reactivate")
    before = snapshot(person)
    client.force_login(admin)

    shown = client.get(reverse(name, args=[person.pk]))
    posted = client.post(reverse(name, args=[person.pk]), PERSON_PAGES[name](person))

    assert (shown.status_code, posted.status_code) == (HTTPStatus.NOT_FOUND, HTTPStatus.NOT_FOUND)
    assert snapshot(person) == before
    assert not person_events().exists()
    assert mailoutbox == []


def test_a_superuser_reaches_a_superuser(client, superuser, precinct17):
    other = UserFactory(unit=precinct17, is_superuser=True, is_active=False)
    client.force_login(superuser)

    response = client.post(reverse("person_reactivate", args=[other.pk]))

    assert response.status_code == HTTPStatus.FOUND
    other.refresh_from_db()
    assert other.is_active is True


# A fresh sign-in for every change


@pytest.mark.parametrize("name", ["person_add", *PERSON_PAGES])
def test_every_change_wants_a_recent_sign_in(
    client, admin, officer, precinct17, mailoutbox, django_capture_on_commit_callbacks, name
):
    User.objects.filter(pk=officer.pk).update(is_active=name != "person_reactivate")
    before = snapshot(officer)
    if name == "person_add":
        url, data = reverse(name), new_person(precinct17)
    else:
        url, data = reverse(name, args=[officer.pk]), PERSON_PAGES[name](officer)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(admin)
        traveller.shift(dt.timedelta(minutes=6))

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, data)

    assert response.url.startswith(reverse("account_reauthenticate"))
    assert snapshot(officer) == before
    assert not User.objects.filter(email="jo.newcomer@agency.test").exists()
    assert not person_events().exists()
    assert mailoutbox == []

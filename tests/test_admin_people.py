from http import HTTPStatus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.models import AuditEvent, Unit, User
from tests.factories import make_unit

pytestmark = pytest.mark.django_db

HEADER = "email,name,badge,rank,member_class,unit_path,role"
P17 = "Metro Police Department / Manhattan South / 17th Precinct"


def upload(*rows, send_invites=False):
    content = "\n".join([HEADER, *rows]).encode()
    data = {"roster": SimpleUploadedFile("roster.csv", content, content_type="text/csv")}
    if send_invites:
        data["send_invites"] = "on"
    return data


@pytest.fixture
def superuser(precinct17):
    """The Django admin is for superusers only; agency admins use the people pages."""
    return User.objects.create_superuser("root@agency.test", "x" * 16, name="Root", unit=precinct17)


def change_data(person, **changes):
    data = {
        "email": person.email,
        "name": person.name,
        "badge": person.badge,
        "rank": person.rank,
        "member_class": person.member_class,
        "role": person.role,
        "unit": person.unit_id,
        "is_active": "on",
    }
    if person.wants_email:
        data["wants_email"] = "on"
    if person.is_on_leave:
        data["is_on_leave"] = "on"
    return {**data, **changes}


def test_an_admin_imports_a_roster_on_the_portals_import_page(client, admin, precinct17):
    # Issue 19: the import left the Django admin for the portal's own page (people_import).
    client.force_login(admin)

    preview = client.post(
        reverse("people_import"),
        upload(f"new@agency.test,New Member,7001,Police Officer,sworn,{P17},officer"),
    )
    response = client.post(reverse("people_import"), {"pending": preview.context["pending"]})

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == reverse("people_import")
    person = User.objects.get(email="new@agency.test")
    assert (person.unit, person.agency) == (precinct17, admin.unit)
    assert AuditEvent.objects.get(action="roster.import").actor == admin


def test_the_upload_shows_every_error_and_changes_nothing(client, admin, precinct17):
    client.force_login(admin)

    response = client.post(
        reverse("people_import"),
        upload(
            f"ok@agency.test,Fine,7001,Police Officer,sworn,{P17},officer",
            f"bad-email,Bad,7002,Police Officer,sworn,{P17},officer",
            "x@agency.test,X,7003,Police Officer,sworn,Nassau County PD,officer",
        ),
    )

    assert response.status_code == HTTPStatus.OK
    errors = [(error.line, error.reason) for error in response.context["errors"]]
    assert errors == [
        (3, "email 'bad-email' is not a valid address"),
        (4, "unit path must start with 'Metro Police Department'"),
    ]
    assert "bad-email" in response.text
    assert not User.objects.filter(email="ok@agency.test").exists()


def test_invites_go_out_when_the_box_is_ticked(
    client, admin, precinct17, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(admin)

    preview = client.post(
        reverse("people_import"),
        upload(f"new@agency.test,New,7001,PO,sworn,{P17},officer", send_invites=True),
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("people_import"), {"pending": preview.context["pending"]})

    assert [message.to for message in mailoutbox] == [["new@agency.test"]]
    assert "http://testserver/accounts/password/reset/key/" in mailoutbox[0].body


@pytest.mark.parametrize("persona", ["officer", "sergeant"])
def test_officers_and_supervisors_are_refused_by_the_admin(client, persona, request):
    client.force_login(request.getfixturevalue(persona))

    response = client.post(
        reverse("admin:portal_user_import"), upload(f"n@agency.test,N,1,PO,sworn,{P17},officer")
    )

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not User.objects.filter(email="n@agency.test").exists()


def test_staff_without_the_manage_people_permission_is_refused(client, sergeant):
    sergeant.is_staff = True
    sergeant.save()
    client.force_login(sergeant)

    upload_page = client.get(reverse("admin:portal_user_import"))
    changelist = client.get(reverse("admin:portal_user_changelist"))

    assert upload_page.status_code == HTTPStatus.FORBIDDEN
    assert changelist.status_code == HTTPStatus.FORBIDDEN


def test_search_by_badge_finds_the_person(client, admin, officer, outsider):
    client.force_login(admin)

    response = client.get(reverse("people"), {"q": officer.badge})

    assert response.status_code == HTTPStatus.OK
    assert list(response.context["page"].object_list) == [officer]


def test_the_changelist_query_count_does_not_grow_with_people(
    client, superuser, precinct17, django_assert_max_num_queries
):
    for number in range(60):
        User.objects.create(email=f"m{number}@agency.test", name=f"M {number}", unit=precinct17)
    client.force_login(superuser)

    with django_assert_max_num_queries(15):
        response = client.get(reverse("admin:portal_user_changelist"))

    assert response.status_code == HTTPStatus.OK


def test_delete_is_not_offered(client, superuser, officer):
    client.force_login(superuser)

    changelist = client.get(reverse("admin:portal_user_changelist"))
    delete = client.post(reverse("admin:portal_user_delete", args=[officer.pk]), {"post": "yes"})
    unit_delete = client.post(reverse("admin:portal_unit_delete", args=[officer.unit_id]))

    assert [name for name, _ in changelist.context["action_form"].fields["action"].choices] == [
        "",
        "deactivate",
        "unlock",
    ]
    assert delete.status_code == HTTPStatus.FORBIDDEN
    assert unit_delete.status_code == HTTPStatus.FORBIDDEN
    assert User.objects.filter(pk=officer.pk).exists()


def test_deactivating_people_keeps_them(client, admin, officer):
    client.force_login(admin)

    client.post(reverse("person_deactivate", args=[officer.pk]))

    officer.refresh_from_db()
    assert not officer.is_active
    assert AuditEvent.objects.get(action="person.deactivate").detail["people"] == [officer.pk]


def test_saving_a_person_keeps_the_agency_in_step_with_the_unit(client, officer):
    nassau = make_unit("Nassau County PD")
    superuser = User.objects.create_superuser("root@agency.test", "x" * 16, name="Root")
    client.force_login(superuser)

    response = client.post(
        reverse("admin:portal_user_change", args=[officer.pk]),
        change_data(officer, unit=nassau.pk, rank="Detective"),
    )

    assert response.status_code == HTTPStatus.FOUND
    officer.refresh_from_db()
    assert (officer.unit, officer.agency, officer.rank) == (nassau, nassau, "Detective")
    assert AuditEvent.objects.get(action="person.change").detail["fields"] == ["rank", "unit"]


def test_a_badge_taken_in_the_agency_cannot_be_given(client, superuser, officer, outsider):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:portal_user_change", args=[officer.pk]),
        change_data(officer, badge=outsider.badge),
    )

    assert response.status_code == HTTPStatus.OK
    assert "already belongs" in str(response.context["adminform"].form.errors["badge"])


def test_a_superuser_adds_a_person_without_a_password(client, superuser, admin, precinct17):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:portal_user_add"),
        {
            "email": "New.Person@Agency.test",
            "name": "New Person",
            "badge": "8800",
            "rank": "Police Officer",
            "member_class": "sworn",
            "role": "admin",
            "unit": precinct17.pk,
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    person = User.objects.get(email="new.person@agency.test")
    assert person.agency == admin.unit
    assert person.is_staff
    assert not person.has_usable_password()


def test_only_a_superuser_sees_the_unit_tree_in_the_django_admin(client, admin, superuser):
    make_unit("Nassau County PD")
    client.force_login(admin)
    refused = client.get(reverse("admin:portal_unit_changelist"))
    client.force_login(superuser)

    response = client.get(reverse("admin:portal_unit_changelist"))

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert response.status_code == HTTPStatus.OK
    assert [unit.name for unit in response.context["cl"].result_list] == [
        "Metro Police Department", "Nassau County PD"
    ]  # fmt: skip
    assert Unit.objects.count() == 4

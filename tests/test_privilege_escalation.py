"""Issue 18, points 1 and 2: no way up from officer to admin, no agency admin over a superuser.

1. Email addresses are managed by admins and the roster only; the import matches people by
   badge within the agency, refuses a row whose email belongs to another badge, and makes no
   change to anyone's role, agency or email without a confirmation.
2. An agency admin reaches neither a superuser nor anyone outside their agency (the people pages'
   actions, import) and is refused the Django admin, which is for superusers; setting a password
   there wants a fresh sign-in and is audited; an import never adopts an account that has no unit.
"""

import datetime as dt
import io
from http import HTTPStatus

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from portal import roster
from portal.email_addresses import MANAGED_BY_ADMINS
from portal.models import AuditEvent, Lockout, User
from tests.factories import PASSWORD, UserFactory, make_unit

pytestmark = pytest.mark.django_db

HEADER = "email,name,badge,rank,member_class,unit_path,role"
AGENCY = "Metro Police Department"
P17 = f"{AGENCY} / Manhattan South / 17th Precinct"
NEW_PASSWORD = "a-brand-new-passphrase-4-u"


def roster_lines(*rows):
    return io.StringIO("\n".join([HEADER, *rows]) + "\n", newline="")


def upload(*rows):
    content = "\n".join([HEADER, *rows]).encode()
    return {"roster": SimpleUploadedFile("roster.csv", content, content_type="text/csv")}


def officer_row(officer, *, email=None, badge=None, role="officer", path=P17):
    email = email or officer.email
    badge = officer.badge if badge is None else badge
    return f"{email},{officer.name},{badge},Police Officer,sworn,{path},{role}"


def change_data(person, **changes):
    data = {
        "email": person.email,
        "name": person.name,
        "badge": person.badge,
        "rank": person.rank,
        "member_class": person.member_class,
        "role": person.role,
        "unit": person.unit_id or "",
        "is_active": "on",
    }
    return {**data, **changes}


@pytest.fixture
def superuser(precinct17):
    """A superuser whose unit is inside the agency admin's agency."""
    return UserFactory(
        email="root@agency.test",
        name="Root",
        unit=precinct17,
        role=User.Role.ADMIN,
        is_superuser=True,
        is_staff=True,
    )


@pytest.fixture
def stranger(db):
    """Someone in another agency."""
    nassau = make_unit("Nassau County PD")
    return UserFactory(email="stranger@nassau.test", name="Stranger", unit=nassau)


# 1. Self-service email change is gone


@pytest.mark.parametrize(
    "action", [{"action_add": "", "email": "new-chief@agency.test"}, {"action_primary": ""}]
)
def test_an_officer_cannot_add_or_make_primary_an_address(client, officer, action):
    client.force_login(officer)

    response = client.post(reverse("account_email"), {"email": "new-chief@agency.test", **action})

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == reverse("email_preferences")
    officer.refresh_from_db()
    assert officer.email == "officer@agency.test"
    assert not EmailAddress.objects.exists()
    followed = client.get(response.url)
    assert escape(MANAGED_BY_ADMINS) in followed.text


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("account_email", []),
        ("account_email_verification_sent", []),
        ("account_confirm_email", ["MQ:1uZfaKe:secret-key"]),
    ],
)
def test_every_allauth_email_page_is_shut(client, officer, name, args):
    client.force_login(officer)

    response = client.get(reverse(name, args=args))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == reverse("email_preferences")


def test_the_account_pages_do_not_link_to_email_management(client, officer):
    client.force_login(officer)

    pages = [client.get(reverse(name)) for name in ("account_change_password", "email_preferences")]

    assert [page.status_code for page in pages] == [HTTPStatus.OK, HTTPStatus.OK]
    assert not any(reverse("account_email") in page.text for page in pages)


def test_the_officer_is_not_raised_by_the_admins_import(client, officer, admin):
    """The attack of the issue: the officer claims the address the admin is about to import."""
    client.force_login(officer)
    client.post(reverse("account_email"), {"action_add": "", "email": "new-chief@agency.test"})
    client.post(reverse("account_email"), {"action_primary": "", "email": "new-chief@agency.test"})

    roster.import_roster(
        roster_lines(f"new-chief@agency.test,New Chief,0999,Chief,sworn,{AGENCY},admin"), by=admin
    )

    officer.refresh_from_db()
    assert (officer.email, officer.role, officer.is_staff) == (
        "officer@agency.test",
        User.Role.OFFICER,
        False,
    )
    chief = User.objects.get(email="new-chief@agency.test")
    assert (chief.badge, chief.role) == ("0999", User.Role.ADMIN)


def test_an_address_taken_before_the_fix_does_not_raise_the_officer_either(officer, admin):
    officer.email = "new-chief@agency.test"  # made primary through the old email page
    officer.save()

    with pytest.raises(roster.RosterError) as excinfo:
        roster.import_roster(
            roster_lines(f"new-chief@agency.test,New Chief,0999,Chief,sworn,{AGENCY},admin"),
            by=admin,
        )

    assert [(error.line, error.reason) for error in excinfo.value.errors] == [
        (
            2,
            f"email new-chief@agency.test belongs to Maria Lopez (badge {officer.badge}); "
            "people are matched by badge, so correct the row or that person's record first",
        )
    ]
    officer.refresh_from_db()
    assert officer.role == User.Role.OFFICER
    assert not User.objects.filter(badge="0999").exists()


def test_a_row_naming_an_existing_email_with_another_badge_is_refused(officer):
    with pytest.raises(roster.RosterError) as excinfo:
        roster.import_roster(roster_lines(officer_row(officer, badge="9999", role="admin")))

    assert excinfo.value.errors[0].reason.startswith(
        f"email officer@agency.test belongs to Maria Lopez (badge {officer.badge})"
    )
    officer.refresh_from_db()
    assert officer.role == User.Role.OFFICER
    assert not User.objects.filter(badge="9999").exists()


def test_a_row_is_matched_by_badge_and_may_change_the_address_once_confirmed(officer):
    lines = [officer_row(officer, email="maria.lopez@agency.test")]

    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        roster.import_roster(roster_lines(*lines))
    roster.import_roster(roster_lines(*lines), confirmed=[c.key for c in excinfo.value.changes])

    assert [str(change) for change in excinfo.value.changes] == [
        f"line 2: {officer}: email officer@agency.test -> maria.lopez@agency.test"
    ]
    officer.refresh_from_db()
    assert officer.email == "maria.lopez@agency.test"
    assert User.objects.count() == 1


def test_a_role_change_is_listed_and_made_only_when_confirmed(officer, admin):
    lines = roster_lines(officer_row(officer, role="admin"))

    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        roster.import_roster(lines, by=admin)

    officer.refresh_from_db()
    assert officer.role == User.Role.OFFICER
    assert [(c.field, c.old, c.new) for c in excinfo.value.changes] == [
        ("role", "officer", "admin")
    ]
    assert not AuditEvent.objects.filter(action="roster.import").exists()


def test_a_confirmation_covers_only_the_changes_it_names(officer, sergeant):
    rows = [officer_row(officer, role="admin"), officer_row(sergeant, role="admin")]
    officer_change = (officer.pk, "role", "officer", "admin")

    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        roster.import_roster(roster_lines(*rows), confirmed=[officer_change])

    assert [change.person_id for change in excinfo.value.changes] == [sergeant.pk]
    assert set(User.objects.values_list("role", flat=True)) == {"officer", "supervisor"}


def test_a_move_to_another_agency_is_a_change_to_confirm(officer):
    make_unit("1st Precinct", parent=make_unit("Nassau County PD"))
    row = officer_row(officer, path="Nassau County PD / 1st Precinct")

    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        roster.import_roster(roster_lines(row))
    summary = roster.import_roster(roster_lines(row), confirmed=True)

    assert [(c.field, c.old, c.new) for c in excinfo.value.changes] == [
        ("agency", AGENCY, "Nassau County PD")
    ]
    officer.refresh_from_db()
    assert (summary.updated, officer.agency.name) == (1, "Nassau County PD")


def test_the_command_lists_the_changes_and_wants_confirm(tmp_path, capsys, officer):
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text(f"{HEADER}\n{officer_row(officer, role='admin')}\n")

    with pytest.raises(CommandError, match="--confirm"):
        call_command("import_roster", str(csv_file))
    refused = capsys.readouterr().err
    officer.refresh_from_db()
    role_before = officer.role
    call_command("import_roster", str(csv_file), "--confirm")

    assert refused.splitlines() == [f"line 2: {officer}: role officer -> admin"]
    assert role_before == User.Role.OFFICER
    officer.refresh_from_db()
    assert officer.role == User.Role.ADMIN


def test_the_admin_previews_the_changes_and_confirms_without_uploading_again(
    client, admin, officer
):
    client.force_login(admin)
    url = reverse("people_import")

    preview = client.post(url, upload(officer_row(officer, role="supervisor")))
    officer.refresh_from_db()
    role_at_preview = officer.role
    confirmed = client.post(url, {"pending": preview.context["pending"]})

    assert preview.status_code == HTTPStatus.OK
    assert [(c.field, c.old, c.new) for c in preview.context["changes"]] == [
        ("role", "officer", "supervisor")
    ]
    assert 'id="roster-changes"' in preview.text
    assert role_at_preview == User.Role.OFFICER
    assert confirmed.status_code == HTTPStatus.FOUND
    assert confirmed.url == reverse("people_import")
    officer.refresh_from_db()
    assert officer.role == User.Role.SUPERVISOR
    event = AuditEvent.objects.get(action="roster.import")
    assert event.detail["changes"] == [
        {"line": 2, "person_id": officer.pk, "person": str(officer), "field": "role",
         "old": "officer", "new": "supervisor"}
    ]  # fmt: skip


def test_a_preview_overtaken_by_another_change_is_shown_again(client, admin, officer):
    client.force_login(admin)
    url = reverse("people_import")
    preview = client.post(url, upload(officer_row(officer, role="admin")))
    User.objects.filter(pk=officer.pk).update(role=User.Role.SUPERVISOR)

    again = client.post(url, {"pending": preview.context["pending"]})

    assert again.status_code == HTTPStatus.OK
    assert [(c.old, c.new) for c in again.context["changes"]] == [("supervisor", "admin")]
    officer.refresh_from_db()
    assert officer.role == User.Role.SUPERVISOR


def test_an_unknown_preview_changes_nothing(client, admin, officer):
    client.force_login(admin)
    url = reverse("people_import")
    client.post(url, upload(officer_row(officer, role="admin")))

    response = client.post(url, {"pending": "made-up"})

    assert response.status_code == HTTPStatus.FOUND
    assert response.url == url
    officer.refresh_from_db()
    assert officer.role == User.Role.OFFICER


# 2. An agency admin reaches no superuser and no one outside their agency


@pytest.mark.parametrize("target", ["superuser", "stranger"])
def test_the_change_pages_of_a_superuser_or_stranger_are_not_found(client, admin, target, request):
    """The Django admin is for superusers only; the people pages find neither."""
    person = request.getfixturevalue(target)
    before = (person.email, person.role)
    client.force_login(admin)
    url = reverse("admin:portal_user_change", args=[person.pk])
    role_url = reverse("person_role", args=[person.pk])

    shown = client.get(url)
    posted = client.post(url, change_data(person, role="supervisor", email="mine@agency.test"))
    role_page = client.get(role_url)
    role_posted = client.post(role_url, {"role": "supervisor"})

    assert (shown.status_code, posted.status_code) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    assert (role_page.status_code, role_posted.status_code) == (
        HTTPStatus.NOT_FOUND,
        HTTPStatus.NOT_FOUND,
    )
    person.refresh_from_db()
    assert (person.email, person.role) == before
    assert not AuditEvent.objects.filter(action="person.change").exists()


@pytest.mark.parametrize("target", ["superuser", "stranger"])
def test_the_password_form_of_a_superuser_or_stranger_is_refused(client, admin, target, request):
    person = request.getfixturevalue(target)
    client.force_login(admin)
    url = reverse("admin:auth_user_password_change", args=[person.pk])

    shown = client.get(url)
    posted = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert (shown.status_code, posted.status_code) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    person.refresh_from_db()
    assert person.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="person.set_password").exists()


@pytest.mark.parametrize("target", ["superuser", "stranger"])
def test_people_actions_do_not_reach_a_superuser_or_stranger(client, admin, target, request):
    person = request.getfixturevalue(target)
    now = timezone.now()
    Lockout.objects.create(
        login=person.email, failures=10, first_failed_at=now, last_failed_at=now, locked_at=now
    )
    client.force_login(admin)

    listed = client.get(reverse("people"), {"status": "all"})
    posted = [
        client.post(reverse(name, args=[person.pk])).status_code
        for name in ("person_deactivate", "person_unlock")
    ]

    assert person not in listed.context["page"].object_list
    assert posted == [HTTPStatus.NOT_FOUND, HTTPStatus.NOT_FOUND]
    person.refresh_from_db()
    assert person.is_active
    assert Lockout.objects.get(login=person.email).locked_at is not None
    events = AuditEvent.objects.filter(action__in=["person.deactivate", "account.unlock"])
    assert not events.filter(object_id=str(person.pk)).exists()
    assert all(person.pk not in event.detail.get("people", []) for event in events)


def test_an_agency_admins_import_does_not_touch_a_superuser(client, admin, superuser):
    client.force_login(admin)

    response = client.post(
        reverse("people_import"),
        upload(f"root@agency.test,Root,{superuser.badge},Chief,sworn,{P17},officer"),
    )

    assert [(e.line, e.reason) for e in response.context["errors"]] == [
        (2, "root@agency.test is a superuser: only a superuser may change them")
    ]
    superuser.refresh_from_db()
    assert (superuser.role, superuser.unit.name) == (User.Role.ADMIN, "17th Precinct")


def test_an_agency_admins_import_does_not_touch_a_stranger(client, admin, stranger, precinct17):
    client.force_login(admin)

    response = client.post(
        reverse("people_import"),
        upload(f"stranger@nassau.test,Stranger,{stranger.badge},PO,sworn,{P17},admin"),
    )

    assert [(e.line, e.reason) for e in response.context["errors"]] == [
        (2, "stranger@nassau.test belongs to another agency")
    ]
    stranger.refresh_from_db()
    assert (stranger.role, stranger.agency.name) == (User.Role.OFFICER, "Nassau County PD")


@pytest.mark.parametrize("scoped", [True, False])
def test_an_import_never_adopts_an_account_without_a_unit(agency, scoped):
    loose = UserFactory(email="loose@agency.test", name="Loose", unit=None, badge="")

    with pytest.raises(roster.RosterError) as excinfo:
        roster.import_roster(
            roster_lines(f"loose@agency.test,Loose,,Chief,sworn,{AGENCY},admin"),
            scope=agency if scoped else None,
        )

    assert excinfo.value.errors[0].reason.startswith(
        "email loose@agency.test belongs to an account with no unit, which an import never "
        "takes over"
    )
    loose.refresh_from_db()
    assert (loose.unit, loose.role) == (None, User.Role.OFFICER)


def test_an_agency_admin_cannot_add_a_person_in_the_django_admin(client, admin):
    client.force_login(admin)

    response = client.post(
        reverse("admin:portal_user_add"),
        {"email": "nobody@agency.test", "name": "Nobody", "member_class": "sworn",
         "role": "officer", "unit": ""},
    )  # fmt: skip

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not User.objects.filter(email="nobody@agency.test").exists()


def test_setting_a_password_wants_a_fresh_sign_in(client, superuser, officer):
    url = reverse("admin:auth_user_password_change", args=[officer.pk])
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(superuser)
        traveller.shift(dt.timedelta(minutes=6))

        shown = client.get(url)
        posted = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert shown.url.startswith(reverse("account_reauthenticate"))
    assert posted.url.startswith(reverse("account_reauthenticate"))
    assert NEW_PASSWORD not in str(dict(client.session))  # not kept to be replayed
    officer.refresh_from_db()
    assert officer.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="person.set_password").exists()


def test_setting_a_password_is_audited_without_the_secret(client, superuser, officer):
    client.force_login(superuser)
    url = reverse("admin:auth_user_password_change", args=[officer.pk])

    shown = client.get(url)
    response = client.post(
        url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    )

    assert shown.status_code == HTTPStatus.OK
    assert response.status_code == HTTPStatus.FOUND
    officer.refresh_from_db()
    assert officer.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="person.set_password")
    assert (event.actor, event.object_id) == (superuser, str(officer.pk))
    assert event.detail == {"usable": True}
    assert NEW_PASSWORD not in str(event.detail)
    assert officer.password not in str(event.detail)

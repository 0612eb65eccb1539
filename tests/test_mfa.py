"""Multi-factor authentication: everyone enrols (a passkey or an app), TOTP sign-in, secrets
encrypted at rest. Passkeys in a real browser: tests/browser/test_passkeys.py."""

from http import HTTPStatus

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from portal import mfa
from portal.models import User
from tests.factories import PASSWORD, TOTP_SECRET
from tests.sign_in import actions, sign_in, signed_in_user_id, totp_code

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


def test_an_officer_without_mfa_reaches_nothing_but_enrolment(officer):
    client = Client()
    sign_in(client, officer.email, waive_enrolment=False)
    assert signed_in_user_id(client) == str(officer.pk)
    enrol = reverse("mfa_index")

    pages = [
        reverse("bulletins:feed"),
        reverse("bulletins:history"),
        reverse("bulletins:create"),
        reverse("admin:index"),
        reverse("audit:events"),
        reverse("account_change_password"),
        reverse("mfa_list_webauthn"),
        "/no-such-page/",
    ]
    responses = [client.get(url) for url in pages]
    htmx = client.get(reverse("bulletins:feed_items"), headers={"HX-Request": "true"})
    confirmed = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    enrolment = [
        client.get(reverse(name)) for name in ("mfa_index", "mfa_add_webauthn", "mfa_activate_totp")
    ]

    assert [(r.status_code, r.url) for r in responses] == [(HTTPStatus.FOUND, enrol)] * len(pages)
    assert htmx.headers["HX-Redirect"] == enrol
    assert confirmed.status_code == HTTPStatus.FOUND
    assert [r.status_code for r in enrolment] == [HTTPStatus.OK] * 3


def test_the_enrolment_page_offers_a_passkey_and_an_authenticator_app(officer):
    client = Client()
    sign_in(client, officer.email, waive_enrolment=False)

    page = client.get(reverse("mfa_index"))

    html = page.text
    assert f'href="{reverse("mfa_add_webauthn")}"' in html
    assert "Set up a passkey" in html
    assert f'href="{reverse("mfa_activate_totp")}"' in html
    assert "Set up an authenticator app" in html
    assert "fingerprint, face or screen lock" in html


def test_a_passkey_is_enough_to_open_the_portal(officer):
    client = Client()
    sign_in(client, officer.email, waive_enrolment=False)
    before = client.get(reverse("bulletins:feed"))

    Authenticator.objects.create(
        user=officer, type=Authenticator.Type.WEBAUTHN, data={"name": "Phone", "credential": {}}
    )
    after = client.get(reverse("bulletins:feed"))

    assert before.url == reverse("mfa_index")
    assert after.status_code == HTTPStatus.OK


def test_the_passkey_form_makes_a_passkey_that_signs_in_by_default(officer):
    client = Client()
    sign_in(client, officer.email, waive_enrolment=False)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})

    page = client.get(reverse("mfa_add_webauthn"))

    form = page.context["form"]
    assert form.fields["passwordless"].initial is True
    assert "creation_options" in page.context["js_data"]
    assert 'id="mfa_webauthn_add"' in page.text


def test_the_sign_in_page_offers_a_passkey(client):
    page = client.get(reverse("account_login"))
    options = client.get(reverse("mfa_login_webauthn"), headers={"Accept": "application/json"})

    assert "Sign in with a passkey" in page.text
    assert 'name="accept_notice" id="passkey_accept_notice" form="mfa_login"' in page.text
    assert f'action="{reverse("mfa_login_webauthn")}"' in page.text
    assert options.status_code == HTTPStatus.OK
    assert options.json()["request_options"]["publicKey"]["userVerification"] == "required"


def test_mfa_is_required_for_everyone_by_default(officer, auxiliary):
    assert mfa.requires_mfa(officer)
    assert mfa.requires_mfa(auxiliary)


def test_enrolment_then_the_portal_opens(sergeant, django_capture_on_commit_callbacks):
    client = Client()
    sign_in(client, sergeant.email, waive_enrolment=False)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    stored = Authenticator.objects.get(user=sergeant, type=Authenticator.Type.TOTP)
    assert stored.data["secret"] != secret
    assert mfa.decrypt_secret(stored.data["secret"]) == secret
    assert client.get(reverse("bulletins:feed")).status_code == HTTPStatus.OK
    assert "mfa.authenticator_added" in actions()


@pytest.mark.parametrize(
    ("policy", "role", "required"),
    [
        ("supervisors", User.Role.OFFICER, False),
        ("supervisors", User.Role.SUPERVISOR, True),
        ("supervisors", User.Role.ADMIN, True),
        ("supervisors", User.Role.AUDITOR, True),
        ("all", User.Role.OFFICER, True),
        ("none", User.Role.ADMIN, False),
    ],
)
def test_mfa_required_for_setting(settings, policy, role, required):
    settings.MFA_REQUIRED_FOR = policy

    assert mfa.requires_mfa(User(role=role)) is required


def test_with_mfa_required_for_supervisors_an_officer_need_not_enrol(settings, officer):
    settings.MFA_REQUIRED_FOR = "supervisors"
    client = Client()
    sign_in(client, officer.email, waive_enrolment=False)

    response = client.get(reverse("bulletins:feed"))

    assert response.status_code == HTTPStatus.OK


def test_an_enrolled_supervisor_signs_in_with_password_and_code(sergeant):
    mfa.enrol_totp(sergeant, TOTP_SECRET)
    client = Client()

    after_password = sign_in(client, sergeant.email)
    signed_in_before_code = signed_in_user_id(client)
    after_code = client.post(reverse("mfa_authenticate"), {"code": totp_code(TOTP_SECRET)})

    assert after_password.url == reverse("mfa_authenticate")
    assert signed_in_before_code is None
    assert after_code.status_code == HTTPStatus.FOUND
    assert signed_in_user_id(client) == str(sergeant.pk)
    assert actions()[-2:] == ["mfa.used", "auth.sign_in"]


def test_totp_secrets_are_encrypted_at_rest(sergeant):
    authenticator = mfa.enrol_totp(sergeant, TOTP_SECRET)

    stored = Authenticator.objects.get(pk=authenticator.pk).data["secret"]

    assert TOTP_SECRET not in stored
    assert stored.startswith(mfa.ENCRYPTED_PREFIX)
    assert mfa.MFAAdapter().decrypt(stored) == TOTP_SECRET


def test_a_supervisor_cannot_turn_mfa_off(sergeant):
    authenticator = mfa.enrol_totp(sergeant, TOTP_SECRET)

    assert mfa.MFAAdapter().can_delete_authenticator(authenticator) is False


def test_the_admin_sign_in_is_the_portal_sign_in(client):
    response = client.get("/admin/login/?next=/admin/")

    assert response.url.startswith(reverse("account_login"))

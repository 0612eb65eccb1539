"""Passkeys in real Chromium. The DevTools protocol's virtual authenticator stands in for a phone's
fingerprint reader: it keeps the passkey and says the person was verified."""

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from portal import lockout
from portal.models import AuditEvent
from tests.browser.conftest import PHONE
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSKEY_NOTICE = "With a passkey too, I accept the system use notice above."
PHONE_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


def add_virtual_authenticator(session):
    """A platform authenticator in this page's browser; returns (DevTools session, its id)."""
    cdp = session.context.new_cdp_session(session.page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": PHONE_AUTHENTICATOR})
    return cdp, added["authenticatorId"]


def enrol_a_passkey(page):
    """From the enrolment page every newcomer is sent to, through to the portal."""
    page.goto("/")
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    page.get_by_role("link", name="Set up a passkey").click()
    page.wait_for_load_state()
    if "/reauthenticate/" in page.url:  # adding a second step wants the password again
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_url("**/webauthn/add/")
    expect(page.get_by_label("Also sign in with it, without my password")).to_be_checked()
    page.get_by_role("button", name="Create the passkey").click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    page.goto("/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto("/accounts/login/")


def actions_of(user):
    return list(
        AuditEvent.objects.filter(actor=user).order_by("id").values_list("action", flat=True)
    )


def test_an_officer_enrols_a_passkey_then_signs_in_with_it_alone(open_session, officer, screenshot):
    session = open_session(PHONE)
    cdp, authenticator_id = add_virtual_authenticator(session)
    page = session.sign_in(officer)  # the password only: no second step yet

    enrol_a_passkey(page)
    sign_out(page)
    screenshot(page, "sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_load_state()
    expect(page.locator("main")).to_contain_text("Tick the box to accept the system use notice")
    page.get_by_label(PASSKEY_NOTICE).check()
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_load_state()

    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator(".whoami")).to_contain_text(officer.name)
    screenshot(page)
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert [c["isResidentCredential"] for c in stored["credentials"]] == [True]
    kinds = Authenticator.objects.filter(user=officer).values_list("type", flat=True)
    assert sorted(kinds) == ["recovery_codes", "webauthn"]
    actions = actions_of(officer)
    since_sign_out = actions[actions.index("auth.sign_out") :]
    assert [a for a in since_sign_out if a != "auth.sign_in_failed"] == [
        "auth.sign_out",
        "auth.notice_accepted",
        "mfa.used",
        "auth.sign_in",
    ]


def test_a_locked_account_cannot_sign_in_with_its_passkey(open_session, officer):
    session = open_session(PHONE)
    add_virtual_authenticator(session)
    page = session.sign_in(officer)
    enrol_a_passkey(page)
    sign_out(page)
    for _ in range(settings.LOCKOUT_FAILURE_LIMIT):
        lockout.register_failure(officer.email, now=timezone.now())

    page.get_by_label(PASSKEY_NOTICE).check()
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_load_state()

    expect(page.locator("main")).to_contain_text("locked")
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert "/accounts/login/" in page.url
    failed = AuditEvent.objects.filter(action="auth.sign_in_failed", object_id=str(officer.pk))
    assert failed.filter(outcome="locked").exists()

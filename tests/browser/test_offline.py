"""Readable offline in Chromium (issue 22): the service worker keeps the person's feed, bulletins
and attachments; offline they come back with the banner, restricted ones never; sign-out and a
second person on the same browser see nothing of the first; what was lifted meanwhile is
corrected as soon as the network is back. And the portal is installable."""

import re
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from bulletins.services import attachments, authoring
from portal import mfa
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.factories import TOTP_SECRET, approved_by_if_needed, draft_bulletin, published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
BANNER = re.compile(r"Offline - as of \d\d:\d\d")
NOT_SAVED = "You are offline and this page was not saved"
RESTRICTED = "Restricted - read it when you are back online"

# Everything the device's copy holds: cache name -> {url: body text}.
COPY_JS = """async () => {
  const copy = {};
  const meta = await (await caches.open("portal-offline-meta")).match("/__portal-offline-meta");
  if (meta && (await meta.json()).etag) copy.complete = true;
  for (const name of await caches.keys()) {
    if (!name.startsWith("portal-copy-")) continue;
    const cache = await caches.open(name);
    copy[name] = {};
    for (const request of await cache.keys()) {
      copy[name][new URL(request.url).pathname] = await (await cache.match(request)).text();
    }
  }
  return copy;
}"""


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def orders(sergeant, outsider, admin, precinct17, precinct75):
    now = timezone.now()
    draft = draft_bulletin(
        sergeant,
        precinct17,
        title="All officers paired - no solo posts",
        instruction="Work in pairs on every tour.",
    )
    upload = SimpleUploadedFile("pairing-roster.pdf", PDF, content_type="application/pdf")
    attachments.attach_files(draft, [upload], ["application/pdf"], by=sergeant, now=now)
    pairing = authoring.publish_bulletin(
        draft, by=sergeant, now=now, approved_by=approved_by_if_needed(draft, sergeant)
    )
    threat = published_bulletin(
        sergeant,
        precinct17,
        kind="intelligence",
        title="Threats against officers on social media",
        instruction="Suspect account names in the attached list.",
    )
    theirs = published_bulletin(admin, precinct75, title="The 75th: guard the station house")
    return {"pairing": pairing, "threat": threat, "theirs": theirs}


def _detail(bulletin):
    return reverse("bulletins:detail", args=[bulletin.pk])


def copy_of(page):
    return page.evaluate(COPY_JS)


def wait_for_copy(page, *paths, timeout=15):
    """Until the worker controls the page and its copy, one account's, is complete and holds
    `paths`."""
    page.wait_for_function(
        "() => navigator.serviceWorker.controller !== null", timeout=timeout * 1000
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        copy = copy_of(page)
        copies = [held for name, held in copy.items() if name != "complete"]
        if copy.get("complete") and len(copies) == 1 and set(paths) <= set(copies[0]):
            return copies[0]
        time.sleep(0.25)
    raise AssertionError(f"the copy never held {paths}: {copy_of(page)}")


def sign_in_again(session, user):
    if mfa.requires_mfa(user) and not mfa.has_totp(user):
        mfa.enrol_totp(user, TOTP_SECRET)
    session.sign_in(user)


def test_feed_and_bulletin_readable_offline_and_nothing_of_them_after_sign_out(
    as_person, officer, outsider, orders, screenshot
):
    pairing, threat, theirs = orders["pairing"], orders["threat"], orders["theirs"]
    attachment = pairing.attachments.get()
    attachment_url = reverse("bulletins:attachment", args=[pairing.pk, attachment.pk])
    session = as_person(officer, viewport=PHONE)
    page = session.page
    page.goto(_detail(pairing))
    copy = wait_for_copy(page, "/", _detail(pairing), attachment_url)

    assert _detail(threat) not in copy
    assert not any("Threats against officers" in body for body in copy.values())
    session.context.set_offline(True)
    page.reload()
    expect(page.locator("#offline-banner")).to_have_text(BANNER)
    expect(page.get_by_role("heading", name="All officers paired - no solo posts")).to_be_visible()
    expect(page.get_by_text("Work in pairs on every tour.").first).to_be_visible()
    screenshot(page, "bulletin-offline")
    page.goto("/")
    expect(page.locator("#offline-banner")).to_have_text(BANNER)
    expect(page.locator(".bulletin-title", has_text="All officers paired")).to_be_visible()
    expect(page.get_by_text(RESTRICTED)).to_be_visible()
    expect(page.get_by_text("Threats against officers")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "feed-offline")
    page.goto(_detail(threat))
    expect(page.get_by_role("heading", name=NOT_SAVED)).to_be_visible()
    page.goto(reverse("bulletins:history"))
    expect(page.get_by_role("heading", name=NOT_SAVED)).to_be_visible()

    session.context.set_offline(False)
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert copy_of(page) == {}
    sign_in_again(session, outsider)
    page.goto(_detail(theirs))
    copy = wait_for_copy(page, "/", _detail(theirs))
    assert not any(
        "All officers paired" in body or "pairing-roster" in body for body in copy.values()
    )
    session.context.set_offline(True)
    page.goto("/")
    expect(page.locator("#offline-banner")).to_have_text(BANNER)
    expect(page.locator(".bulletin-title", has_text="The 75th: guard")).to_be_visible()
    expect(page.get_by_text("All officers paired")).to_have_count(0)
    page.goto(_detail(pairing))
    expect(page.get_by_role("heading", name=NOT_SAVED)).to_be_visible()
    page.goto(attachment_url)
    expect(page.get_by_role("heading", name=NOT_SAVED)).to_be_visible()


def test_a_new_sign_in_without_sign_out_wipes_the_copy_first(as_person, officer, outsider, orders):
    """Sign-out's Clear-Site-Data aside: any sign-in empties what the device kept."""
    session = as_person(officer, viewport=PHONE)
    page = session.page
    wait_for_copy(page, "/", _detail(orders["pairing"]))
    page.context.clear_cookies()  # the session is gone without a sign-out (e.g. it expired)

    sign_in_again(session, outsider)
    copy = wait_for_copy(page, "/", _detail(orders["theirs"]))

    assert _detail(orders["pairing"]) not in copy
    assert len([name for name in copy_of(page) if name.startswith("portal-copy-")]) == 1


def test_a_bulletin_lifted_while_offline_is_corrected_when_back_online(
    as_person, officer, sergeant, orders
):
    pairing = orders["pairing"]
    session = as_person(officer, viewport=PHONE)
    page = session.page
    page.goto(_detail(pairing))
    wait_for_copy(page, "/", _detail(pairing))
    session.context.set_offline(True)
    page.reload()
    expect(page.locator("#offline-banner")).to_have_text(BANNER)

    authoring.lift_bulletin(
        pairing, by=sergeant, now=timezone.now(), reason="Threat assessed as not credible."
    )
    session.context.set_offline(False)

    expect(page.locator("#offline-banner")).to_be_hidden(timeout=15_000)
    expect(page.get_by_text("Threat assessed as not credible.").first).to_be_visible()
    copy = wait_for_copy(page, "/")
    assert _detail(pairing) not in copy
    page.goto("/")
    expect(page.get_by_text("All officers paired - no solo posts")).to_have_count(0)


def test_the_copy_ends_with_the_sessions_absolute_limit(as_person, settings, officer, orders):
    settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS = 20
    session = as_person(officer, viewport=PHONE)
    page = session.page
    wait_for_copy(page, "/", _detail(orders["pairing"]))
    session.context.set_offline(True)
    page.reload()
    expect(page.locator("#offline-banner")).to_have_text(BANNER)

    page.wait_for_timeout(21_000)
    page.reload()

    expect(page.get_by_role("heading", name=NOT_SAVED)).to_be_visible()
    assert copy_of(page) == {}


def test_installable_the_manifest_parses_and_a_worker_with_a_fetch_handler_controls_the_page(
    browser, live_server, tmp_path
):
    """Lighthouse-style, through the DevTools protocol, in a profile that is not incognito
    (Chromium never offers to install from one)."""
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        base_url=live_server.url,
        viewport=PHONE,
    )
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto("/accounts/login/")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
        cdp = context.new_cdp_session(page)

        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        manifest = cdp.send("Page.getAppManifest")
        worker = page.evaluate(
            "async () => (await (await fetch(navigator.serviceWorker.controller.scriptURL)).text())"
        )
    finally:
        context.close()

    assert errors == []
    assert manifest["errors"] == []
    assert manifest["url"].endswith("/manifest.webmanifest")
    assert 'self.addEventListener("fetch"' in worker

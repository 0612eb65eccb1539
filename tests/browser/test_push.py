"""Web Push in Chromium: the service worker's `push` handler shows the message the portal sent
as a notification (delivered through the DevTools protocol, `ServiceWorker.deliverPushMessage`,
as a push service would), and the Devices page offers "Alert this device" on a phone."""

import json
import time

import pytest
from django.urls import reverse

from bulletins.management.commands.vapid_keys import new_pair
from portal import mfa
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.factories import TOTP_SECRET, published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOTIFICATIONS_JS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications()).map(
    (n) => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}));
}"""


# What the worker's notificationclick handler does with the tapped notification's url (headless
# Chromium shows no notification to tap: the handler's own function is called instead).
CLICK_JS = "(url) => self.portalOpenFromNotification(url).then(() => true)"


@pytest.fixture
def keys(settings):
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = new_pair()


@pytest.fixture
def phone(browser, live_server, tmp_path):
    """A phone-sized Chromium profile (not incognito) that allowed the portal's notifications."""
    context = browser.browser_type.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        base_url=live_server.url,
        viewport=PHONE,
    )
    context.set_default_timeout(10_000)
    context.grant_permissions(["notifications"], origin=live_server.url)
    yield context
    context.close()


def sign_in(page, user, password):
    from tests.browser.conftest import sign_in_page

    if mfa.requires_mfa(user) and not mfa.has_totp(user):
        mfa.enrol_totp(user, TOTP_SECRET)
    sign_in_page(page, user, password)


def registration_id(page, cdp, origin, timeout=15):
    """The id DevTools gives the portal's service worker registration (asked again every 2 s:
    the first `enable` sometimes reports none)."""
    found = {}
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: found.update(
            {r["registrationId"]: r["scopeURL"] for r in event["registrations"]}
        ),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cdp.send("ServiceWorker.enable")
        for _ in range(20):
            ids = [pk for pk, scope in found.items() if scope.startswith(origin)]
            if ids:
                return ids[0]
            page.wait_for_timeout(100)  # lets Playwright deliver the events meanwhile
        cdp.send("ServiceWorker.disable")
    raise AssertionError(f"no service worker registration for {origin}: {found}")


def push_and_wait(page, cdp, origin, message, timeout=15):
    """Deliver `message` to the portal's worker as a push service would, and return the
    notifications it then shows. Delivered again every 3 s while none shows: headless Chromium
    now and then drops a push sent right after the worker starts (the tag makes a second
    delivery replace the first, never add to it)."""
    registration = registration_id(page, cdp, origin)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": registration, "data": json.dumps(message)},
        )
        for _ in range(30):
            if shown := page.evaluate(NOTIFICATIONS_JS):
                return shown
            page.wait_for_timeout(100)
    return []


def test_the_worker_shows_a_pushed_message_as_a_notification_whose_url_opens_the_bulletin(
    phone, live_server, sergeant, officer, password
):
    order = published_bulletin(sergeant, officer.unit, priority=1, title="No solo posts")
    url = reverse("bulletins:detail", args=[order.pk])
    page = phone.pages[0] if phone.pages else phone.new_page()
    sign_in(page, officer, password)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    cdp = phone.new_cdp_session(page)
    message = {"title": "Officer safety - immediate", "body": "No solo posts", "url": url,
               "tag": f"bulletin-{order.pk}"}  # fmt: skip

    shown = push_and_wait(page, cdp, live_server.url, message)

    with page.expect_navigation(url=live_server.url + url):
        phone.service_workers[0].evaluate(CLICK_JS, shown[0]["url"])

    assert shown == [
        {
            "title": "Officer safety - immediate",
            "body": "No solo posts",
            "tag": f"bulletin-{order.pk}",
            "url": live_server.url + url,
        }
    ]


def test_a_pushed_url_of_another_origin_opens_the_portal_instead(
    phone, live_server, officer, password
):
    page = phone.pages[0] if phone.pages else phone.new_page()
    sign_in(page, officer, password)
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    cdp = phone.new_cdp_session(page)
    message = {"title": "T", "body": "", "url": "https://evil.test/x", "tag": "t"}

    shown = push_and_wait(page, cdp, live_server.url, message)

    assert [notification["url"] for notification in shown] == [live_server.url + "/"]


def test_the_devices_page_offers_alert_this_device_on_a_phone(
    keys, as_person, officer, live_server
):
    session = as_person(officer, PHONE)
    page = session.page

    page.goto(reverse("bulletins:devices"))
    button = page.get_by_role("button", name="Alert this device")
    button.wait_for(state="visible")
    box = button.bounding_box()

    assert box["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

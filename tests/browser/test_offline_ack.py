"""Acknowledge in a dead zone, on a 360 px phone in Chromium: the acknowledgement is saved on the
device and sent when the network returns (one receipt, both times), or refused with a message
the officer reads when the order changed meanwhile. An order with a check of understanding is
not acknowledged offline."""

import contextlib
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from bulletins.models import Receipt
from bulletins.services import authoring, offline_ack
from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import assert_fits_a_phone, assert_no_serious_axe_violations
from tests.factories import published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAVED = "Saved on this device - it will be sent when you are back online"
STALE = "This order changed while you were offline - read it again"


@pytest.fixture
def order(sergeant, precinct17, officer):
    return published_bulletin(
        sergeant,
        precinct17,
        now=timezone.now() - timedelta(minutes=30),
        title="Check vehicles for tampering before every tour",
        instruction="Walk around and under the car before driving.",
    )


def opened_offline(as_person, officer, bulletin):
    """The officer's phone with the order open, the worker in control (when it takes it), then
    the network gone."""
    session = as_person(officer, PHONE)
    page = session.page
    page.goto(f"/bulletins/{bulletin.pk}/")
    # Without a worker the page sends the queue itself (online event, next load).
    with contextlib.suppress(PlaywrightError):
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
    session.context.set_offline(True)
    return session, page


@pytest.fixture
def sent(monkeypatch):
    """Each acknowledgement made offline that reached the server (the live server's thread)."""
    calls = []
    record = offline_ack.acknowledge_offline

    def counted(*args, **kwargs):
        calls.append(kwargs["client_id"])
        return record(*args, **kwargs)

    monkeypatch.setattr(offline_ack, "acknowledge_offline", counted)
    return calls


def receipts(user, bulletin):
    return Receipt.objects.filter(user=user, bulletin=bulletin, acknowledged_at__isnull=False)


def wait_for(condition, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def test_acknowledged_offline_is_sent_once_when_back_online(
    as_person, officer, order, screenshot, sent
):
    session, page = opened_offline(as_person, officer, order)

    page.get_by_role("button", name="Acknowledge").click()

    expect(page.get_by_text(SAVED)).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_be_hidden()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    screenshot(page, "saved")
    time.sleep(1.2)  # the device's time (to the second) is before its arrival
    assert not receipts(officer, order).exists()

    session.context.set_offline(False)

    assert wait_for(lambda: receipts(officer, order).exists())
    expect(page.get_by_text("on this device, received")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("You acknowledged version 1")).to_be_visible()
    screenshot(page, "sent")
    page.reload()
    expect(page.get_by_text("You acknowledged version 1")).to_be_visible()
    receipt = receipts(officer, order).get()
    assert receipt.method == Receipt.Method.OFFLINE
    assert sent == [receipt.client_id]  # once, by whichever sender had it first
    assert receipt.acknowledged_on_device_at < receipt.acknowledged_at
    assert receipt.acknowledged_at - receipt.acknowledged_on_device_at < timedelta(minutes=2)
    assert receipts(officer, order).count() == 1


def test_an_order_changed_while_offline_is_refused_and_the_officer_is_told(
    as_person, officer, sergeant, order, screenshot
):
    session, page = opened_offline(as_person, officer, order)
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text(SAVED)).to_be_visible()

    authoring.amend_bulletin(
        order, by=sergeant, now=timezone.now(), reason="Check the wheel nuts too",
        is_material=True, instruction="Walk around and under the car; check the wheel nuts.",
    )  # fmt: skip
    session.context.set_offline(False)

    expect(page.get_by_text(STALE)).to_be_visible(timeout=15_000)
    # The page was loaded again: the new version to read, and Acknowledge for it.
    expect(page.get_by_text("Walk around and under the car; check the wheel nuts.")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    assert_fits_a_phone(page)
    screenshot(page, "refused")
    assert not receipts(officer, order).exists()


def test_an_order_with_a_check_is_not_acknowledged_offline(
    as_person, officer, sergeant, precinct17
):
    checked = published_bulletin(
        sergeant,
        precinct17,
        now=timezone.now() - timedelta(minutes=30),
        title="Pair up on every post",
        questions=[{"question": "Alone on a post?", "choices": ["Yes", "No"], "answer": 1}],
    )
    session, page = opened_offline(as_person, officer, checked)

    page.get_by_role("group", name="Alone on a post?").get_by_label("No").check()
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.get_by_text("Answer the check when you are back online.")).to_be_visible()
    session.context.set_offline(False)
    time.sleep(1)
    assert not receipts(officer, checked).exists()


def test_with_the_tab_closed_the_worker_sends_it_and_the_next_page_says_so(
    as_person, officer, order, sent
):
    session, page = opened_offline(as_person, officer, order)
    page.wait_for_function("navigator.serviceWorker.controller !== null")  # this needs the worker
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text(SAVED)).to_be_visible()
    page.close()

    session.context.set_offline(False)  # Background Sync: no page of the portal is open

    assert wait_for(lambda: receipts(officer, order).exists())
    feed = session.context.new_page()
    feed.goto("/")
    expect(feed.get_by_text("on this device, received")).to_be_visible()
    receipt = receipts(officer, order).get()
    assert receipt.method == Receipt.Method.OFFLINE
    assert sent == [receipt.client_id]

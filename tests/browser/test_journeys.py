"""The officer's and the supervisor's journeys, in real Chromium against the live portal."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bulletins import coverage
from bulletins.services import reading
from tests.browser.conftest import PHONE, POLL_SECONDS
from tests.factories import PASSWORD, published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the feed may take to show a change: one polling interval, plus the request itself.
WITHIN_ONE_POLL_MS = (POLL_SECONDS + 3) * 1000


def card(page, title):
    return page.locator(".bulletin-card", has_text=title)


def mark_page(page):
    """A flag that only survives while the page is never reloaded."""
    page.evaluate("window.notReloaded = true")


def still_same_page(page):
    return page.evaluate("window.notReloaded === true")


def coverage_figure(page, name):
    return page.locator(".figure-grid > div", has=page.locator("dt", has_text=name)).locator("dd")


def test_sergeant_publishes_an_order_and_the_officer_acknowledges_it_without_reloading(
    as_person, sergeant, officer, precinct17, screenshot
):
    title = "All officers paired - no solo posts until further notice"
    officer_view = as_person(officer, PHONE)
    feed = officer_view.page
    feed.goto("/")
    expect(feed.get_by_text("Nothing is in force for you right now.")).to_be_visible()
    mark_page(feed)
    desk = as_person(sergeant).page

    desk.get_by_role("link", name="New bulletin").click()
    desk.get_by_label("Title").fill(title)
    desk.get_by_label("Instructions").fill("Work in pairs. No solo posts.")
    desk.get_by_label("Body", exact=True).fill(
        "Effective immediately, **all** officers are paired."
    )
    desk.get_by_label("Kind").select_option(label="Order")
    desk.get_by_label("Priority").select_option(label="Officer safety - immediate")
    units = desk.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("17th Precinct", exact=True).check()
    desk.get_by_label("Until further notice", exact=True).check()
    desk.get_by_role("button", name="Preview").click()
    expect(desk.get_by_text("This is how officers will see it.")).to_be_visible()
    desk.get_by_role("button", name="Publish").click()
    expect(desk.get_by_text("Published. It is in force now.")).to_be_visible()
    desk.get_by_role("link", name="Who has acknowledged").click()
    acknowledged = coverage_figure(desk, "Acknowledged")
    expect(acknowledged).to_have_text(re.compile(r"^1\b"))  # the sergeant, who issued it

    expect(card(feed, title)).to_be_visible(timeout=WITHIN_ONE_POLL_MS)
    assert still_same_page(feed)
    expect(card(feed, title)).to_contain_text("Not yet acknowledged")
    card(feed, title).get_by_role("link").click()
    feed.get_by_role("button", name="Acknowledge").click()
    expect(feed.get_by_text("Acknowledged. Thank you.")).to_be_visible()
    expect(feed.get_by_text("You acknowledged version 1")).to_be_visible()
    coverage.refresh_watched()  # the workers' next run (beat: every 5 s; none runs here)

    expect(acknowledged).to_have_text(re.compile(r"^2\b"), timeout=WITHIN_ONE_POLL_MS)
    screenshot(feed, "officer")
    screenshot(desk)


def test_an_officer_of_another_precinct_does_not_see_the_order_and_gets_the_404_page(
    as_person, sergeant, precinct17, outsider, screenshot
):
    order = published_bulletin(sergeant, precinct17, title="17th Precinct: paired patrols")
    page = as_person(outsider, PHONE).page

    page.goto("/")
    feed_text = page.locator("main").inner_text()
    response = page.goto(f"/bulletins/{order.pk}/")

    assert order.title not in feed_text
    assert "Nothing is in force for you right now." in feed_text
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert order.title not in page.content()
    screenshot(page)


def test_a_material_amendment_asks_the_officer_to_acknowledge_again_and_shows_the_change(
    as_person, admin, manhattan, officer, screenshot
):
    order = published_bulletin(  # to a borough: agency-wide, the change would need approval
        admin,
        manhattan,
        title="All officers paired - no solo posts until further notice",
        instruction="Work in pairs. No solo posts.",
    )
    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())
    desk = as_person(admin).page

    desk.goto(f"/bulletins/{order.pk}/")
    desk.get_by_role("link", name="Amend").click()
    desk.get_by_label("Instructions").fill(
        "Work in pairs. No solo posts. Auxiliary officers stay off the street."
    )
    desk.get_by_label("It changes what officers must do").check()
    desk.get_by_label("Reason").fill("Auxiliary officers are taken off the street.")
    desk.get_by_role("button", name="Amend").click()
    expect(desk.get_by_text("Amended.")).to_be_visible()
    page = as_person(officer, PHONE).page
    page.goto("/")
    expect(card(page, order.title)).to_contain_text("Changed - acknowledge again")
    card(page, order.title).get_by_role("link").click()
    banner = page.locator(".changed-banner")
    expect(banner).to_contain_text("Changed - acknowledge again.")
    expect(banner).to_contain_text("You acknowledged version 1. This is version 2")
    expect(banner.locator("ins")).to_contain_text("Auxiliary officers stay off the street.")
    screenshot(page, "changed")
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.get_by_text("You acknowledged version 2")).to_be_visible()
    screenshot(page)


def test_a_fixed_term_bulletin_leaves_the_feed_while_the_officer_watches_and_is_in_history(
    as_person, sergeant, precinct17, officer, screenshot
):
    page = as_person(officer, PHONE).page
    ends_at = timezone.now() + timedelta(seconds=4)
    bulletin = published_bulletin(
        sergeant,
        precinct17,
        title="Manhattan South: paired for 36 hours",
        priority=2,
        expires_at=ends_at,
    )
    page.goto("/")
    expect(card(page, bulletin.title)).to_be_visible()
    mark_page(page)

    expect(card(page, bulletin.title)).to_have_count(0, timeout=4_000 + WITHIN_ONE_POLL_MS)
    assert timezone.now() >= ends_at
    assert still_same_page(page)
    page.get_by_role("link", name="History").first.click()

    ended = card(page, bulletin.title)
    expect(ended).to_contain_text("Ended")
    screenshot(page)


def test_a_lifted_order_shows_lifted_and_the_reason_to_officers(
    as_person, sergeant, precinct17, officer, auxiliary, screenshot
):
    order = published_bulletin(
        sergeant, precinct17, title="Station house security: guard the front desk"
    )
    reason = "Threat assessed as not credible by the intelligence division."
    desk = as_person(sergeant).page

    desk.goto(f"/bulletins/{order.pk}/")
    desk.get_by_role("link", name="Lift").click()
    desk.get_by_label("Reason").fill(reason)
    desk.get_by_role("button", name="Lift").click()
    expect(desk.get_by_text("Lifted. Officers now see it as lifted")).to_be_visible()
    page = as_person(officer, PHONE).page
    page.goto("/")
    feed_text = page.locator("main").inner_text()
    page.goto(f"/bulletins/{order.pk}/")
    history = as_person(auxiliary, PHONE).page
    history.goto("/history/")

    assert order.title not in feed_text
    banner = page.locator(".ended-banner")
    expect(banner).to_contain_text("Lifted")
    expect(banner).to_contain_text(f"Reason: {reason}")
    expect(card(history, order.title)).to_contain_text("Lifted")
    expect(card(history, order.title)).to_contain_text(reason)
    screenshot(history, "history")
    screenshot(page)


def test_five_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(
    open_session, officer, screenshot
):
    page = open_session(PHONE).page
    page.goto("/accounts/login/")

    def attempt(password):
        page.get_by_label("Email").fill(officer.email)
        page.get_by_label("Password").fill(password)
        page.get_by_label("I have read the system use notice").check()
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_load_state()

    for n in range(5):
        attempt(f"wrong-password-{n}")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    attempt(PASSWORD)

    expect(page.locator("main")).to_contain_text("locked")
    assert "/accounts/login/" in page.url
    assert page.get_by_role("button", name="Sign out").count() == 0
    screenshot(page)

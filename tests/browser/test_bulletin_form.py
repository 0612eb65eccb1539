"""The bulletin form in Chromium: end-time shortcuts in the agency's zone whatever the browser's,
"Until further notice" disabling the end time, the preview's time span, and the icon."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, axe_violations
from tests.factories import published_bulletin

pytestmark = pytest.mark.django_db(transaction=True)

FIELD_FORMAT = "%Y-%m-%dT%H:%M"
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def agency_field(moment):
    """A moment as the server reads the datetime-local field: the agency's wall clock."""
    return timezone.localtime(moment).strftime(FIELD_FORMAT)


def fill_in(page, title="Vehicles checked for sabotage"):
    page.goto("/bulletins/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Instructions").fill("Check under every car before the tour.")
    units = page.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("17th Precinct", exact=True).check()


@pytest.mark.parametrize("browser_zone", ["UTC", "Asia/Tokyo"])
def test_plus_12_hours_is_12_hours_after_now_on_the_agency_clock(
    as_person, sergeant, precinct17, browser_zone
):
    page = as_person(sergeant, DESKTOP, timezone_id=browser_zone).page
    fill_in(page)
    before = timezone.now()

    page.get_by_role("button", name="+12 h").click()

    value = page.get_by_label("Ends at").input_value()
    after = timezone.now()
    assert value in {
        agency_field(before + timedelta(hours=12)),
        agency_field(after + timedelta(hours=12)),
    }
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == browser_zone


def test_a_device_clock_five_hours_wrong_does_not_move_the_end(as_person, sergeant, precinct17):
    page = as_person(sergeant, DESKTOP, timezone_id="UTC").page
    page.clock.install(time=datetime.now(UTC) - timedelta(hours=5))
    fill_in(page)
    before = timezone.now()

    page.get_by_role("button", name="+12 h").click()

    value = page.get_by_label("Ends at").input_value()
    after = timezone.now()
    assert value in {
        agency_field(before + timedelta(hours=12)),
        agency_field(after + timedelta(hours=12)),
    }


def test_a_shortcut_from_a_scheduled_start_counts_real_hours_across_a_clock_change(
    as_person, sergeant, precinct17
):
    page = as_person(sergeant, DESKTOP, timezone_id="Asia/Tokyo").page
    fill_in(page)
    page.get_by_label("At a set time").check()
    # New York's clocks go forward at 02:00 on Sunday 9 March 2031.
    page.get_by_label("Takes effect at").fill("2031-03-08T20:00")

    page.get_by_role("button", name="+12 h").click()
    twelve = page.get_by_label("Ends at").input_value()
    page.get_by_role("button", name="+7 days").click()
    week = page.get_by_label("Ends at").input_value()

    start = timezone.make_aware(datetime(2031, 3, 8, 20, 0)).astimezone(UTC)  # elapsed hours
    assert twelve == agency_field(start + timedelta(hours=12)) == "2031-03-09T09:00"
    assert week == agency_field(start + timedelta(days=7)) == "2031-03-15T21:00"


def test_until_further_notice_disables_the_end_time_and_the_draft_has_none(
    as_person, sergeant, precinct17
):
    from bulletins.models import Bulletin

    page = as_person(sergeant, PHONE).page
    fill_in(page)
    ends = page.get_by_label("Ends at")
    page.get_by_role("button", name="+36 h").click()
    chosen = ends.input_value()

    page.get_by_label("Until further notice", exact=True).check()
    expect(ends).to_be_disabled()
    expect(ends).to_have_value("")
    page.get_by_label("Until further notice", exact=True).uncheck()
    expect(ends).to_be_enabled()
    expect(ends).to_have_value(chosen)
    page.get_by_label("Until further notice", exact=True).check()
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_text("This is how officers will see it.")).to_be_visible()
    assert Bulletin.objects.get().expires_at is None
    expect(page.locator(".preview-facts")).to_contain_text(
        "Until further notice, reviewed every 72 hours"
    )


def test_a_shortcut_unticks_until_further_notice_and_enables_the_end(
    as_person, sergeant, precinct17
):
    page = as_person(sergeant, DESKTOP).page
    fill_in(page)
    page.get_by_label("Until further notice", exact=True).check()

    page.get_by_role("button", name="+7 days").click()

    expect(page.get_by_label("Until further notice", exact=True)).not_to_be_checked()
    expect(page.get_by_label("Ends at")).to_be_enabled()
    expect(page.get_by_label("Ends at")).not_to_have_value("")


def test_the_preview_shows_the_time_span_and_reach_on_a_phone(
    as_person, sergeant, officer, auxiliary, precinct17, screenshot
):
    page = as_person(sergeant, PHONE, timezone_id="UTC").page
    fill_in(page)
    page.get_by_label("At a set time").check()
    page.get_by_label("Takes effect at").fill("2031-07-08T06:00")
    page.get_by_label("Ends at").fill("2031-07-09T18:00")

    page.get_by_role("button", name="Preview").click()

    facts = page.locator(".preview-facts")
    expect(facts).to_contain_text("Takes effect Tue 08 Jul 2031 06:00 (New York time)")
    expect(facts).to_contain_text("Ends Wed 09 Jul 2031 18:00 (New York time)")
    expect(facts).to_contain_text("Reaches 3 people")
    assert page.evaluate(SIDEWAYS) == 0
    assert axe_violations(page) == []
    screenshot(page)


def test_the_form_is_accessible_and_fits_a_phone(as_person, sergeant, precinct17):
    page = as_person(sergeant, PHONE).page
    fill_in(page)
    page.get_by_label("Until further notice", exact=True).check()

    assert page.evaluate(SIDEWAYS) == 0
    assert axe_violations(page) == []


def test_the_browser_finds_the_icon(open_session):
    page = open_session(DESKTOP).page

    response = page.goto("/favicon.ico")

    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")


def test_extending_on_the_amend_page_adds_to_the_current_end_and_the_box_disables_it(
    as_person, sergeant, officer, precinct17
):
    ends = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=36)
    order = published_bulletin(sergeant, precinct17, expires_at=ends)
    page = as_person(sergeant, PHONE, timezone_id="Asia/Tokyo").page
    page.goto(f"/bulletins/{order.pk}/amend")

    page.get_by_role("button", name="+12 h").click()

    assert page.get_by_label("Ends at").input_value() == agency_field(ends + timedelta(hours=12))
    page.get_by_label("Until further notice", exact=True).check()
    expect(page.get_by_label("Ends at")).to_be_disabled()
    assert page.evaluate(SIDEWAYS) <= 0

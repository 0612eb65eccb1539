"""Superseding on a phone: a sergeant writes "Paired patrols extended" to replace his pairing
order and publishes it; the old order reads as lifted, superseded by the new one (with a link),
and the officer's feed shows only the new one."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)
from tests.factories import published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OLD = "Precinct pairing order: two officers per car"
NEW = "Paired patrols extended"


def test_a_sergeant_supersedes_his_pairing_order_at_360_px(
    as_person, sergeant, officer, precinct17, story, screenshot
):
    old = published_bulletin(
        sergeant,
        precinct17,
        now=timezone.now() - timedelta(hours=4),
        title=OLD,
        instruction="Two officers in every car.",
    )
    page = as_person(sergeant, PHONE).page
    page.goto("/bulletins/new")
    page.get_by_label("Title").fill(NEW)
    page.get_by_label("Instructions").fill("Two officers in every car, on every tour, all week.")
    units = page.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("17th Precinct", exact=True).check()
    page.get_by_label("Until further notice", exact=True).check()
    supersedes = page.get_by_role("group", name="Supersedes (optional)")
    expect(supersedes).to_contain_text("They are lifted when this one takes effect")
    supersedes.get_by_label(OLD, exact=False).check()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, ".supersede-choices label")
    screenshot(page, "form")

    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Supersedes (lifted when this one takes effect):")).to_be_visible()
    page.get_by_role("button", name="Publish").click()

    expect(page.get_by_text("Published. It is in force now.")).to_be_visible()
    expect(page.get_by_text("Supersedes:")).to_be_visible()
    page.get_by_role("link", name=OLD).click()
    banner = page.locator(".ended-banner.lifted")
    expect(banner).to_contain_text("Lifted")
    expect(banner).to_contain_text(f"Reason: Superseded by {NEW}")
    link = page.get_by_role("navigation", name="Related bulletins").get_by_role("link", name=NEW)
    expect(link).to_be_visible()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, ".supersede-links a")
    screenshot(page, "old-order")
    link.click()
    expect(page.get_by_role("heading", name=NEW, level=1)).to_be_visible()

    reader = as_person(officer, PHONE).page
    reader.goto("/")
    feed = reader.locator(".bulletin-card")
    expect(feed.filter(has_text=NEW)).to_have_count(1)
    expect(feed.filter(has_text=OLD)).to_have_count(0)
    assert_no_serious_axe_violations(reader)
    old.refresh_from_db()
    assert old.status == "lifted"

"""Drafts and scheduled on a phone: a sergeant saves a draft, leaves it, finds it again under
Drafts and goes back to edit it; the page fits 360 px, passes axe and has 44 px targets."""

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

TITLE = "Body cameras on for every stop"


def test_a_sergeant_finds_his_draft_again_and_edits_it(
    as_person, sergeant, precinct17, story, screenshot
):
    later = timezone.now() + timedelta(hours=8)
    published_bulletin(sergeant, precinct17, effective_at=later, title="Paired from tonight")
    page = as_person(sergeant, PHONE).page
    page.goto("/bulletins/new")
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Instructions").fill("Switch the body camera on before every stop.")
    units = page.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("17th Precinct", exact=True).check()
    page.get_by_label("Until further notice", exact=True).check()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Preview.", exact=True)).to_be_visible()
    page.goto("/")

    page.get_by_role("link", name="Drafts", exact=True).click()

    expect(page.get_by_role("heading", name="Drafts and scheduled", level=1)).to_be_visible()
    card = page.locator(".bulletin-card").filter(has_text=TITLE)
    expect(card).to_have_count(1)
    expect(card).to_contain_text("To 17th Precinct (and below): everyone")
    expect(card).to_contain_text("Last saved")
    scheduled = page.locator(".bulletin-card").filter(has_text="Paired from tonight")
    expect(scheduled).to_contain_text(f"Takes effect {timezone.localtime(later):%a %d %b %Y %H:%M}")
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, "main a.button, .site-nav a")
    screenshot(page, "drafts")

    card.get_by_role("link", name="Edit").click()

    expect(page.get_by_role("heading", name="Edit draft", level=1)).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value(TITLE)

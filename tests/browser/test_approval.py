"""A second pair of eyes in the browser: the sergeant of the 17th (at his desk, 1280 px) writes
an order to the whole of Manhattan South and submits it for approval; the borough commander
approves it on his phone (360 px) from Awaiting approval; an officer of the 17th sees it in
her feed."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLE = "Manhattan South: guard station-house entrances on every tour"


def test_the_sergeant_submits_the_commander_approves_at_360_px_the_officer_sees_it(
    as_person, sergeant, commander, officer, precinct17, manhattan, screenshot
):
    desk = as_person(sergeant).page
    desk.goto("/bulletins/new")
    desk.get_by_label("Title").fill(TITLE)
    desk.get_by_label("Instructions").fill(
        "Post an armed officer in the doorway of every station house, every tour."
    )
    units = desk.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("Manhattan South", exact=True).check()
    desk.get_by_label("Until further notice", exact=True).check()
    desk.get_by_role("button", name="Preview").click()
    expect(desk.get_by_role("button", name="Publish", exact=True)).to_have_count(0)
    desk.get_by_role("button", name="Submit for approval").click()
    expect(desk.get_by_text("Submitted for approval.")).to_be_visible()
    expect(desk.get_by_text("Awaiting approval.", exact=False).first).to_be_visible()

    phone = as_person(commander, PHONE).page
    phone.goto("/")
    nav = phone.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Awaiting approval 1 waiting").click()
    expect(phone.get_by_role("heading", name="Awaiting approval", exact=True)).to_be_visible()
    assert_fits_a_phone(phone)
    assert_no_serious_axe_violations(phone)
    screenshot(phone, "awaiting")
    phone.get_by_role("link", name=f'Open "{TITLE}" to approve').click()
    expect(phone.get_by_text("Written by Sgt. Dan Kowalski")).to_be_visible()
    assert_fits_a_phone(phone)
    assert_no_serious_axe_violations(phone)
    assert_tap_targets(phone, ".actions .button")
    screenshot(phone, "preview")
    phone.get_by_role("button", name="Approve").click()
    expect(phone.get_by_text("Approved. It is in force now.")).to_be_visible()
    expect(
        phone.get_by_text("Written by Sgt. Dan Kowalski, approved by Insp. Ray Donovan")
    ).to_be_visible()
    assert_fits_a_phone(phone)
    assert_no_serious_axe_violations(phone)
    screenshot(phone, "approved")

    feed = as_person(officer, PHONE).page
    feed.goto("/")
    expect(feed.get_by_role("link", name=TITLE)).to_be_visible()

"""Issue 19, point 18: an admin on a phone finds a person, opens their record and puts them on
leave after confirming; every page fits 360 px and passes axe."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_phone_ready(page, targets):
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, targets)


def test_an_admin_puts_an_officer_on_leave_from_the_people_pages(
    as_person, admin, officer, story, screenshot
):
    page = as_person(admin, PHONE).page
    page.goto("/")

    page.get_by_role("link", name="People", exact=True).first.click()
    assert_phone_ready(page, "main button, main a.button, .account-nav a")
    page.get_by_label("Name, email or badge").fill("lopez")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    screenshot(page, "list")
    rows.get_by_role("link", name="Maria Lopez").click()
    expect(page.get_by_role("heading", name="Maria Lopez", level=1)).to_be_visible()
    assert_phone_ready(page, "main a.button")
    screenshot(page, "record")
    page.get_by_role("link", name="Put on leave").click()
    expect(page.get_by_role("heading", name="Put Maria Lopez on leave?")).to_be_visible()
    assert_phone_ready(page, "main button, main a.button")
    officer.refresh_from_db()
    on_leave_before_confirming = officer.is_on_leave
    page.get_by_role("button", name="Put on leave").click()

    expect(page.get_by_text("Maria Lopez is on leave.")).to_be_visible()
    expect(
        page.get_by_role("cell", name="On leave: no reminders, obligations wait")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Back from leave")).to_be_visible()
    assert on_leave_before_confirming is False
    officer.refresh_from_db()
    assert officer.is_on_leave is True
    assert_phone_ready(page, "main a.button")
    screenshot(page, "on-leave")


def test_the_people_pages_pass_axe_on_a_desktop_and_the_move_page_fits_a_phone(
    as_person, admin, officer, story, screenshot
):
    page = as_person(admin).page

    for path in ("/people/?role=officer", f"/people/{officer.pk}/"):
        page.goto(path)
        assert_no_serious_axe_violations(page)
    screenshot(page, "desktop-record")
    page.set_viewport_size(PHONE)
    page.goto(f"/people/{officer.pk}/move")

    expect(page.get_by_label("Move to")).to_be_visible()
    assert_phone_ready(page, "main button, main a.button")
    screenshot(page, "move")


def test_an_admin_on_a_phone_adds_a_person_and_finds_them_on_the_list(
    as_person, admin, precinct17, story, screenshot
):
    page = as_person(admin, PHONE).page
    page.goto("/people/")

    page.get_by_role("link", name="Add a person").click()
    expect(page.get_by_role("heading", name="Add a person", level=1)).to_be_visible()
    expect(page.get_by_label("Send a link to set a password")).to_be_checked()
    fields = "main input:not([type=hidden]):not([type=checkbox]), main select, main label.checkbox"
    assert_phone_ready(page, f"main button, main a.button, {fields}")
    page.get_by_label("Name").fill("Jo Newcomer")
    page.get_by_label("Email", exact=True).fill("Jo.Newcomer@agency.test")
    page.get_by_label("Badge number").fill("88001")
    page.get_by_label("Rank").fill("Police Officer")
    page.get_by_label("Unit").select_option(label="\u2014 \u2014 17th Precinct")
    page.get_by_role("button", name="Add person").click()

    expect(page.get_by_role("heading", name="Jo Newcomer", level=1)).to_be_visible()
    expect(page.get_by_text("A link to set a password was sent to")).to_be_visible()
    assert_phone_ready(page, "main a.button")
    for button, heading in [
        ("Edit details", "Edit the details of Jo Newcomer"),
        ("Send a link to set a password", "Send Jo Newcomer a link to set a password?"),
    ]:
        page.get_by_role("link", name=button).click()
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        assert_phone_ready(page, f"main button, main a.button, {fields}")
        page.get_by_role("link", name="Cancel").click()
    page.get_by_role("link", name="People", exact=True).first.click()
    page.get_by_label("Name, email or badge").fill("88001")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.get_by_role("link", name="Jo Newcomer")).to_be_visible()
    expect(rows).to_contain_text("jo.newcomer@agency.test")
    expect(rows).to_contain_text("17th Precinct")
    assert_phone_ready(page, "main button, main a.button")
    screenshot(page, "added")

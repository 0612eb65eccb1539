"""Tracking pages of issue 19 in a browser, on a 360 px phone: read figures for what asks only
to be read (point 4), a sergeant reminding his own people of an agency order and the 15-minute
limit said before sending (points 5, 17), people attached to the agency as a row of their own
(point 7), the time span without a leading separator (point 17)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, axe_violations

pytestmark = pytest.mark.django_db(transaction=True)
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_the_overview_reads_advisories_as_read_not_acknowledged(story, admin, as_person):
    page = as_person(admin, PHONE).page

    page.goto("/coverage/")

    # (the order of the rows: tests/test_dashboards.py)
    advisory = page.locator(".coverage-table tbody tr").filter(has_text=story["protest"].title)
    expect(advisory).to_contain_text(re.compile(r"Read: \d+ of \d+ have opened it"))
    expect(advisory).to_contain_text("Not asked")
    expect(advisory).not_to_contain_text("acknowledged")
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []


def test_the_coverage_page_shows_who_is_attached_to_the_agency(story, admin, as_person, screenshot):
    page = as_person(admin, PHONE).page

    page.goto(f"/bulletins/{story['pairing'].pk}/coverage")

    attached = page.locator(".unit-attached")
    expect(attached).to_contain_text("Attached to the agency")
    expect(attached).to_contain_text("1 of 1 acknowledged")
    when = page.locator(".bulletin-when").first
    expect(when).to_have_text(re.compile(r"^In force"))
    assert "· In force" not in page.locator("main").inner_text()
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    screenshot(page, "attached")


def test_a_sergeant_reminds_his_own_people_and_sees_when_he_can_again(
    story, sergeant, as_person, screenshot
):
    page = as_person(sergeant, PHONE).page
    page.goto(f"/bulletins/{story['pairing'].pk}/coverage")

    page.get_by_role("link", name="Remind everyone outstanding").click()
    expect(page.get_by_text("once every 15 minutes")).to_be_visible()
    send = page.get_by_role("button", name="Send reminder")
    expect(send).to_be_enabled()
    send.click()
    expect(page.get_by_text(re.compile(r"Reminder sent to \d+ people\."))).to_be_visible()
    page.get_by_role("link", name="Remind everyone outstanding").click()

    opens = timezone.localtime(timezone.now() + timedelta(minutes=15))
    expect(page.get_by_role("button", name="Send reminder")).to_be_disabled()
    wait = page.locator("#remind-wait")
    expect(wait).to_contain_text("You can send the next reminder at")
    expect(wait).to_contain_text(re.compile(rf"{opens:%H}:\d\d"))
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    screenshot(page, "remind-wait")

"""Corrections in real Chromium: what the officer sees of one, and what a sergeant may call one."""

import pytest
from django.utils import dateformat, timezone
from playwright.sync_api import expect

from bulletins.models import BulletinVersion
from bulletins.services import authoring, reading
from tests.browser.conftest import PHONE, axe_violations
from tests.factories import published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_an_officer_on_a_phone_sees_what_a_correction_changed(
    as_person, sergeant, officer, precinct17, screenshot
):
    order = published_bulletin(
        sergeant,
        precinct17,
        title="Paired patrols in Manhatan South",
        instruction="Work in pairs. Report to the desk officer at the start of every tour.",
    )
    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())
    authoring.amend_bulletin(
        order,
        by=sergeant,
        now=timezone.now(),
        reason="Spelling of the borough",
        is_material=False,
        title="Paired patrols in Manhattan South",
    )
    corrected_at = timezone.localtime(order.versions.get(number=2).created_at)
    page = as_person(officer, PHONE).page

    page.goto(f"/bulletins/{order.pk}/")

    banner = page.locator(".corrected-banner")
    heading = (
        f"Corrected {dateformat.format(corrected_at, 'D d M H:i')} (New York time): what changed"
    )
    expect(banner.get_by_role("heading", name=heading)).to_be_visible()
    expect(banner.locator("del")).to_have_text("Manhatan")
    expect(banner.locator("ins")).to_have_text("Manhattan")
    expect(page.get_by_text("Version 2 is a correction of what you acknowledged")).to_be_visible()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    screenshot(page)


def test_a_sergeant_cannot_pass_off_a_changed_order_as_a_correction(
    as_person, sergeant, precinct17, screenshot
):
    order = published_bulletin(
        sergeant, precinct17, title="Stand-by posts", instruction="Keep TWO officers on stand-by"
    )
    desk = as_person(sergeant, PHONE).page

    desk.goto(f"/bulletins/{order.pk}/amend")
    expect(desk.get_by_text("at most 3 words")).to_be_visible()
    desk.get_by_label("Instructions").fill("Stand-by posts are cancelled")
    desk.get_by_label("A spelling correction or a new end time").check()
    desk.get_by_label("Reason").fill("Typo")
    desk.get_by_role("button", name="Amend").click()

    choice = desk.get_by_role("group", name="What kind of change is this?")
    expect(choice).to_contain_text(
        "This changes what officers must do: publish it as a change that needs acknowledging"
    )
    assert BulletinVersion.objects.filter(bulletin=order).count() == 1
    assert desk.evaluate(SIDEWAYS) <= 0
    assert axe_violations(desk) == []
    screenshot(desk)

"""Roll call in a browser (issue 23): the sergeant at his desk runs the 17th Precinct's Day roll
call, the officer co-signs on her phone with the code, and the coverage page counts her
roll-call receipt."""

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from bulletins.models import Receipt, Recipient
from portal import tours
from portal.models import Tour, User
from tests.browser.conftest import DESKTOP, PHONE, axe_violations
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_tap_targets,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def day_tour(story, agency, officer):
    """The agency's tours; the officer and two of the 17th's crew work Days."""
    for n, (name, start, end) in enumerate(
        [("Day", 7, 15), ("Evening", 15, 23), ("Midnight", 23, 7)]
    ):
        Tour.objects.create(
            unit=agency, name=name, starts_at=dt.time(start), ends_at=dt.time(end), position=n
        )
    tours.tours_changed(agency)
    crew = [person.pk for person in story["crew"][:2]]  # Kevin Osei, Ana Petrovic (17th)
    User.objects.filter(pk__in=[officer.pk, *crew]).update(tour="Day")


def _acknowledged_figure(page):
    figure = page.locator(".figure-grid div").filter(
        has=page.locator("dt", has_text="Acknowledged")
    )
    return figure.locator("dd").inner_text()


def test_the_sergeant_runs_the_day_roll_call_and_the_officer_co_signs_on_her_phone(
    story, day_tour, sergeant, officer, as_person, screenshot, settings
):
    settings.COVERAGE_REFRESH_SECONDS = 0  # no workers here: moved figures computed in the view
    pairing = story["pairing"]
    desk = as_person(sergeant, DESKTOP).page
    desk.goto(f"/bulletins/{pairing.pk}/coverage")
    before = _acknowledged_figure(desk)

    desk.get_by_role("link", name="Roll call", exact=True).click()
    desk.get_by_label("Unit").select_option(label="17th Precinct")
    desk.get_by_label("Tour").select_option("Day")
    desk.get_by_role("button", name="Start roll call").click()

    expect(desk.get_by_role("heading", level=1)).to_have_text("Roll call: 17th Precinct, Day tour")
    orders = desk.locator(".roll-call-order")
    expect(orders.first).to_contain_text(pairing.title)  # Immediate before Priority
    expect(orders.filter(has_text=pairing.title)).to_contain_text("on the roster not acknowledged")
    assert_tap_targets(desk, "label.checkbox")
    desk.get_by_label(officer.name).check()
    desk.get_by_role("button", name="Save who is present").click()
    expect(orders.filter(has_text=pairing.title)).to_contain_text("1 present not acknowledged")
    for box in desk.get_by_role("checkbox", name=re.compile("^Briefed")).all():
        box.check()
    desk.get_by_role("button", name="Finish roll call").click()
    expect(desk.get_by_text("Roll call recorded.")).to_be_visible()
    code = desk.locator(".roll-call-code [aria-hidden]").inner_text().strip()
    expect(desk.get_by_text("Valid until")).to_be_visible()
    assert axe_violations(desk) == []
    screenshot(desk, "sergeant")

    phone = as_person(officer, PHONE).page
    phone.get_by_role("link", name="Roll call", exact=True).click()
    phone.get_by_label("Roll-call code").fill(code.lower())
    phone.get_by_role("button", name="Show the briefed orders").click()
    expect(phone.get_by_role("heading", name=pairing.title)).to_be_visible()
    expect(phone.get_by_text("I was briefed on this order at roll call")).to_be_visible()
    assert_fits_a_phone(phone)
    assert axe_violations(phone) == []
    screenshot(phone, "officer")
    phone.get_by_role("button", name=re.compile("^Acknowledge briefed orders")).click()
    expect(phone.get_by_text(re.compile(r"Acknowledged \d briefed order"))).to_be_visible()
    assert_fits_a_phone(phone)

    receipt = Receipt.objects.get(user=officer, bulletin=pairing)
    assert (receipt.method, receipt.statement) == (
        "roll_call",
        "I was briefed on this order at roll call and understand it.",
    )
    assert Recipient.objects.get(user=officer, bulletin=pairing).acknowledged_method == "roll_call"
    desk.reload()
    expect(desk.locator("#present-heading")).to_contain_text("co-signed 1")
    desk.goto(f"/bulletins/{pairing.pk}/coverage")
    after = _acknowledged_figure(desk)
    assert int(after.split()[0]) == int(before.split()[0]) + 1
    if "at roll call" in after:  # 23c's label, where built
        assert "of which 1 at roll call" in after
    screenshot(desk, "coverage")

"""'I cannot comply' in a browser: the officer answers on a 360 px phone, the sergeant at his
desk sees it on the coverage page (and in the banner) and resolves it, the officer sees it
resolved."""

import pytest
from playwright.sync_api import expect

from bulletins.models import CannotComplyReason, Response
from tests.browser.conftest import DESKTOP, PHONE, axe_violations

pytestmark = pytest.mark.django_db(transaction=True)
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def fits_and_passes_axe(page):
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []


def test_officer_cannot_comply_and_the_sergeant_resolves_it(
    story, officer, sergeant, as_person, screenshot
):
    for position, label in enumerate(("No partner available", "Equipment missing", "Other")):
        CannotComplyReason.objects.create(
            agency=story["pairing"].agency, label=label, position=position
        )
    order = story["pairing"]
    phone = as_person(officer, PHONE).page

    phone.goto(f"/bulletins/{order.pk}/")
    phone.get_by_role("link", name="I cannot comply").click()
    fits_and_passes_axe(phone)
    phone.get_by_role("button", name="Send").click()  # no reason: refused, nothing sent
    expect(phone.get_by_text("Choose a reason.")).to_be_visible()
    phone.get_by_label("No partner available").check()
    phone.get_by_label("Details").fill("Partner went home sick at 07:50")
    screenshot(phone, "officer-form")
    phone.get_by_role("button", name="Send").click()

    expect(phone.get_by_text("Sent to your supervisors")).to_be_visible()
    expect(phone.get_by_text("No partner available - waiting for a supervisor")).to_be_visible()
    expect(phone.get_by_role("button", name="Acknowledge")).to_be_visible()  # still outstanding
    fits_and_passes_axe(phone)

    desk = as_person(sergeant, DESKTOP).page
    desk.goto("/")
    banner = desk.locator(".cannot-comply-banner")
    expect(banner).to_contain_text("1 officer cannot comply")
    banner.get_by_role("link").first.click()
    answers = desk.locator("#cannot-comply")
    expect(answers).to_contain_text("Maria Lopez")
    expect(answers).to_contain_text("No partner available")
    expect(answers).to_contain_text("Partner went home sick at 07:50")
    expect(answers).to_contain_text("1 open, 1 in all")
    fits_and_passes_axe(desk)
    screenshot(desk, "sergeant-coverage")
    answers.get_by_role("link", name="Resolve").click()
    desk.get_by_label("How it was resolved").fill("Paired with P.O. Diaz at 08:40")
    desk.get_by_role("button", name="Resolve").click()

    expect(desk.get_by_text("Resolved. Maria Lopez is told.")).to_be_visible()
    expect(desk.locator("#cannot-comply")).to_contain_text("Resolved by Sgt. Dan Kowalski")
    expect(desk.locator(".cannot-comply-banner")).to_have_count(0)

    phone.reload()
    expect(phone.get_by_text("Paired with P.O. Diaz at 08:40")).to_be_visible()
    expect(phone.locator(".my-answers")).to_contain_text("Resolved by Sgt. Dan Kowalski")
    fits_and_passes_axe(phone)
    screenshot(phone, "officer-resolved")
    assert Response.objects.get().resolved_by == sergeant

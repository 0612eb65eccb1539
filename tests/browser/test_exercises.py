"""Exercises in a browser, on a 360 px phone: an officer sees EXERCISE on the card and on the
page, and acknowledges it like a real order; the sergeant finds the Exercises page from the
coverage overview and reads the drill's results."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, axe_violations

pytestmark = pytest.mark.django_db(transaction=True)
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
DRILL = "Exercise: station-house lockdown drill"


@pytest.fixture
def drill(story, sergeant, auxiliary, precinct17):
    from bulletins.services import reading
    from tests.factories import published_bulletin

    t0 = timezone.now() - timedelta(hours=1)
    bulletin = published_bulletin(
        sergeant,
        precinct17,
        now=t0,
        title=DRILL,
        instruction="Lock the side doors and report to the desk officer when your post is secure.",
        is_exercise=True,
    )
    reading.acknowledge(
        bulletin.pk, user=auxiliary, version_number=1, now=t0 + timedelta(minutes=6)
    )
    return bulletin


def test_an_officer_sees_exercise_on_the_card_and_the_page_and_acknowledges_it(
    drill, officer, as_person, screenshot
):
    page = as_person(officer, PHONE).page

    page.goto("/")
    card = page.locator(".bulletin-card").filter(has_text=DRILL)
    expect(card.locator(".exercise-badge")).to_have_text("EXERCISE")
    real = page.locator(".bulletin-card").filter(has_text="All officers paired")
    expect(real.locator(".exercise-badge")).to_have_count(0)
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    screenshot(page, "feed")

    card.click()
    expect(page).to_have_title(re.compile(r"^EXERCISE - "))
    expect(page.locator(".exercise-banner")).to_contain_text("Training, not a real order")
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    screenshot(page, "page")


def test_the_sergeant_opens_the_exercises_page_from_the_overview(
    drill, sergeant, as_person, screenshot
):
    page = as_person(sergeant, PHONE).page

    page.goto("/coverage/")
    expect(page.locator(".coverage-table")).not_to_contain_text(DRILL)
    page.get_by_role("link", name="Exercises and their results").click()

    expect(page.get_by_role("heading", name="Exercises", exact=True)).to_be_visible()
    row = page.locator(".exercises-table tbody tr").filter(has_text=DRILL)
    expect(row).to_contain_text("EXERCISE")
    expect(row).to_contain_text(re.compile(r"\d+% \(2 of \d+\)"))  # the sergeant and one more
    expect(row).to_contain_text("Not reached")
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    screenshot(page, "exercises")

    row.get_by_role("link", name=DRILL).click()
    expect(page.locator(".exercise-banner")).to_contain_text("Training, not a real order")
    assert axe_violations(page) == []

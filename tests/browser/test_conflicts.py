"""A precinct order under a department order on the same topic, on a phone: the sergeant writes
a 17th Precinct order on Patrol staffing while the department's pairing order is in force, sees
it named on the form, ticks "My order does not relax it", sees it again on the preview and
publishes; the department's issuer is told, and the command overview lists the pair."""

import pytest
from playwright.sync_api import expect

from bulletins.models import Bulletin, NotificationEvent, Topic
from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW = "17th Precinct: paired foot posts on Fifth Avenue"


def test_a_sergeant_publishes_a_precinct_order_under_the_department_order_at_360_px(
    as_person, sergeant, admin, precinct17, story, screenshot
):
    pairing = story["pairing"]
    staffing = Topic.objects.create(agency=pairing.agency, name="Patrol staffing", position=1)
    Topic.objects.create(agency=pairing.agency, name="Vehicle checks", position=2)
    Bulletin.objects.filter(pk=pairing.pk).update(topic=staffing)
    page = as_person(sergeant, PHONE).page

    page.goto("/bulletins/new")
    page.get_by_label("Title").fill(NEW)
    page.get_by_label("Instructions").fill("Foot posts on Fifth Avenue are paired on every tour.")
    page.get_by_label("Topic (optional)").select_option(label="Patrol staffing")
    units = page.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("17th Precinct", exact=True).check()
    page.get_by_label("Until further notice", exact=True).check()
    page.get_by_role("button", name="Preview").click()

    warning = page.locator(".conflict-warning")
    expect(warning).to_contain_text(f"In force from the department on this topic: {pairing.title}")
    expect(page.get_by_text('Tick "My order does not relax it"', exact=False)).to_be_visible()
    expect(warning.get_by_role("link", name=pairing.title)).to_be_visible()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, ".conflict-warning a")
    screenshot(page, "form")
    assert not Bulletin.objects.filter(title=NEW).exists()

    page.get_by_label("My order does not relax it").check()
    page.get_by_role("button", name="Preview").click()

    expect(page.locator(".conflict-warning")).to_contain_text(
        "You ticked My order does not relax it"
    )
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    screenshot(page, "preview")
    page.get_by_role("button", name="Publish").click()

    expect(page.get_by_text("Published. It is in force now.")).to_be_visible()
    expect(page.get_by_text("Topic: Patrol staffing")).to_be_visible()
    lower = Bulletin.objects.get(title=NEW)
    told = NotificationEvent.objects.get(event="conflict")
    assert (told.bulletin_id, told.key) == (pairing.pk, f"b{lower.pk}")

    commander = as_person(admin, PHONE).page
    commander.goto("/coverage/")
    pairs = commander.locator(".topic-pairs")
    expect(pairs).to_contain_text("Orders on the same topic in force at two levels")
    expect(pairs.get_by_role("link", name=NEW)).to_be_visible()
    assert_fits_a_phone(commander)
    assert_no_serious_axe_violations(commander)
    assert_tap_targets(commander, ".topic-pairs a")
    screenshot(commander, "overview")

"""Templates on a phone: a sergeant starts a bulletin from "All officers paired" and finds it
filled in; the admin edits a template, which makes version 2. Both pages fit 360 px and pass axe."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bulletins.models import Bulletin, TemplateVersion
from bulletins.services import templates
from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLE = "All officers paired - no solo posts"


@pytest.fixture
def pairing_template(admin, agency, precinct17):
    return templates.create_template(
        by=admin,
        now=timezone.now(),
        agency=agency,
        name="All officers paired",
        suggested_units=[precinct17],
        title=TITLE,
        instruction="Work in pairs on every post and every tour. No solo posts.",
        body="All officers will be **paired up**.",
        kind="order",
        priority=1,
        duration=None,
        review_interval=timedelta(hours=48),
        to_sworn=True,
        to_auxiliary=False,
        to_civilian=False,
        supervisors_only=False,
    )


def test_a_sergeant_starts_from_a_template_on_a_phone(
    as_person, sergeant, pairing_template, screenshot
):
    page = as_person(sergeant, PHONE).page
    page.goto("/bulletins/new")
    section = page.get_by_role("region", name="Start from a template")

    section.get_by_role("link", name="All officers paired").click()

    expect(page.get_by_label("Title")).to_have_value(TITLE)
    expect(page.get_by_label("Instructions")).to_have_value(
        "Work in pairs on every post and every tour. No solo posts."
    )
    units = page.get_by_role("group", name="Units (with all the units under them)")
    expect(units.get_by_label("17th Precinct", exact=True)).to_be_checked()
    expect(page.get_by_label("Auxiliary members")).not_to_be_checked()
    expect(page.get_by_label("Until further notice", exact=True)).to_be_checked()
    expect(page.get_by_label("Review every (hours)")).to_have_value("48")
    expect(page.get_by_text("Started from template All officers paired, version 1")).to_be_visible()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, ".start-from-template a.button")
    screenshot(page, "bulletin-from-template")

    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_text("Preview.", exact=True)).to_be_visible()
    assert Bulletin.objects.get().template_version == pairing_template.versions.get()


def test_the_admin_edits_a_template_on_a_phone(as_person, admin, pairing_template, screenshot):
    page = as_person(admin, PHONE).page
    page.goto("/")
    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page.get_by_role("heading", name="Templates", level=1)).to_be_visible()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)

    page.get_by_role("link", name="Edit All officers paired").click()
    expect(page.get_by_label("Title")).to_have_value(TITLE)
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    screenshot(page, "template-edit")
    page.get_by_label("Title").fill("All officers paired - two per car")
    page.get_by_role("button", name="Save template").click()

    expect(page.get_by_text("Saved as version 2.")).to_be_visible()
    latest = TemplateVersion.objects.filter(template=pairing_template).order_by("-number").first()
    assert (latest.number, latest.title) == (2, "All officers paired - two per car")

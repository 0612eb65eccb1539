"""Issue 19, points 2 and 18, in real Chromium on a 360 px phone: a roster with a unit typo is
refused with the nearest name; ticking "Create units that do not exist yet" lists the units in
the preview; confirming creates them. The Units page shows the tree with its counts. Every
step fits the phone (no sideways scroll, 16 px text), passes axe and has large tap targets."""

import pytest
from playwright.sync_api import expect

from portal.models import Unit, User
from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "email,name,badge,rank,member_class,unit_path,role"
AGENCY = "Metro Police Department"
P17 = f"{AGENCY} / Manhattan South / 17th Precinct"
TYPO = f"{AGENCY} / Manhatan South / 17th Precinct"


def check_the_page(page):
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, "main button, main label.checkbox, main .actions a")


def upload(page, csv_file, *, create_units=False):
    page.get_by_label("Roster file (CSV)").set_input_files(str(csv_file))
    if create_units:
        page.get_by_label("Create units that do not exist yet").check()
    page.get_by_role("button", name="Check the roster").click()
    page.wait_for_load_state()


def test_a_unit_typo_is_refused_then_created_once_listed_and_confirmed(
    as_person, admin, officer, precinct17, tmp_path, screenshot
):
    rows = [
        f"p{n}@agency.test,Person {n},{7000 + n},Police Officer,sworn,{P17},officer"
        for n in range(5)
    ]
    rows.append(f"typo@agency.test,Typo Person,7100,Police Officer,sworn,{TYPO},officer")
    csv_file = tmp_path / "june-roster.csv"
    csv_file.write_text("\n".join([HEADER, *rows]) + "\n")
    session = as_person(admin, PHONE)
    page = session.page

    session.goto("/people/import/")
    expect(page.get_by_role("heading", name="Import roster", level=1)).to_be_visible()
    check_the_page(page)
    upload(page, csv_file)

    refused = page.locator("#roster-errors")
    expect(page.locator("#roster-refused")).to_contain_text("nothing was changed")
    expect(refused).to_contain_text("7")
    expect(refused).to_contain_text(
        "no unit 'Manhatan South' under 'Metro Police Department'; did you mean 'Manhattan South'?"
    )
    screenshot(page, "refused")
    check_the_page(page)
    assert not User.objects.filter(badge="7100").exists()

    upload(page, csv_file, create_units=True)

    listed = page.locator("#roster-new-units")
    expect(page.get_by_role("heading", name="Check the roster before importing")).to_be_visible()
    expect(listed).to_contain_text("Units to create (2)")
    expect(listed.get_by_text(TYPO, exact=True)).to_be_visible()
    expect(page.locator("#roster-summary")).to_contain_text("6 new people")
    screenshot(page, "preview")
    check_the_page(page)
    assert not Unit.objects.filter(name="Manhatan South").exists()

    page.get_by_role("button", name="Confirm and import").click()
    page.wait_for_load_state()

    result = page.locator("#roster-result")
    expect(result).to_contain_text("Roster imported")
    expect(result).to_contain_text(TYPO)
    check_the_page(page)
    assert User.objects.get(badge="7100").unit.path_names() == TYPO.split(" / ")
    session.close()


def test_units_shows_the_tree_with_counts_that_open_the_people_list(
    as_person, admin, officer, auxiliary, sergeant, squad_officer, outsider, screenshot
):
    session = as_person(admin, PHONE)
    page = session.page

    session.goto("/people/units/")

    tree = page.locator("#unit-tree")
    expect(page.get_by_role("heading", name="Units", level=1)).to_be_visible()
    expect(tree).to_contain_text("17th Precinct Anti-Crime")
    expect(tree).to_contain_text("4 people in all")
    screenshot(page)
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, "#unit-tree a")

    page.get_by_role("link", name="4 people in all in 17th Precinct", exact=True).click()
    page.wait_for_load_state()

    assert page.url.endswith(f"/people/?unit={officer.unit_id}")
    expect(page.get_by_role("link", name=officer.name)).to_be_visible()
    session.close()

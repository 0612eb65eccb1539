"""The roll-call sheet in real Chromium: printed (print media, the printable width of Letter and
of A4) no column of any table is cut off, and print-to-PDF makes a PDF; on a 360 px phone it
does not scroll sideways and its Print button prints; the sergeant records on the phone who
signed the sheet."""

import pytest
from playwright.sync_api import expect

from bulletins.models import Receipt
from portal.models import User
from tests.browser.conftest import DESKTOP, PHONE, axe_violations
from tests.factories import UserFactory
from tests.test_roll_call_paper import make_roll_call

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MM = 96 / 25.4  # CSS pixels per millimetre
MARGIN_MM = 12  # print-sheet.css: @page margin
# Paper width in mm -> the width the sheet is laid out in when printed.
PAPERS = {"A4": 210, "Letter": 215.9}
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
# Every table and every cell of it: how far its right edge runs past the printable width (px),
# whether a cell's text runs out of it, and whether a table scrolls inside itself.
OVERRUNS = """(width) => {
  const past = [];
  for (const table of document.querySelectorAll('table')) {
    const boxes = [table, ...table.querySelectorAll('th, td')];
    for (const box of boxes) {
      const right = box.getBoundingClientRect().right;
      const text = box.textContent.trim().slice(0, 30);
      if (right > width + 0.5) past.push(`${box.tagName} ${text}: ${right - width} px`);
      const cut = box.scrollWidth - box.clientWidth;  // text running out of its cell
      if (cut > 1) past.push(`${box.tagName} ${text}: text cut off by ${cut} px`);
    }
    const inside = table.scrollWidth - table.clientWidth;
    if (inside > 1) past.push(`table scrolls by ${inside} px`);
  }
  return past;
}"""


@pytest.fixture
def roll_call(story, sergeant, precinct17, officer, auxiliary):
    """The 17th Precinct's Day roll call, with a long roster (a long name, rank and shield
    among them: the columns must hold them) and the two orders in force for the 17th."""
    crew = list(User.objects.filter(unit=precinct17, role=User.Role.OFFICER))
    crew += [
        UserFactory(name=f"Officer Number {n} Of The Day Tour", unit=precinct17) for n in range(24)
    ]
    crew.append(
        UserFactory(
            name="Maximiliana Alexandrovna Konstantinopolous-Vanderbilt-Oyelaran",
            rank="Police Officer Detective Specialist, Third Grade",
            badge="98765432109876543210",
            unit=precinct17,
        )
    )
    orders = [story["pairing"], story["vehicles"]]
    return make_roll_call(sergeant, precinct17, crew, orders)


@pytest.mark.parametrize("paper", PAPERS)
def test_the_sheet_fits_the_printable_width_of_the_paper(
    roll_call, sergeant, as_person, paper, screenshot
):
    page = as_person(sergeant, DESKTOP).page
    printable = round((PAPERS[paper] - 2 * MARGIN_MM) * MM)

    page.goto(f"/roll-call/{roll_call.pk}/print?paper={paper.lower()}")
    page.emulate_media(media="print")
    page.set_viewport_size({"width": printable, "height": 1000})

    assert page.evaluate(OVERRUNS, printable) == []
    assert page.evaluate(SIDEWAYS) <= 0
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    signature = page.locator("td.signature").first.bounding_box()
    assert signature["width"] >= 50 * MM  # wide enough to sign in
    assert signature["height"] >= 11 * MM
    pdf = page.pdf(format=paper, print_background=True)
    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page") > 1  # the long roster runs on to a second page
    screenshot(page, paper)


def test_the_sheet_on_a_phone_does_not_scroll_sideways_and_prints(
    roll_call, sergeant, as_person, screenshot
):
    session = as_person(sergeant, PHONE)
    page = session.page
    page.add_init_script("window.print = () => { window.printed = true; };")

    page.goto(f"/roll-call/{roll_call.pk}/print")
    button = page.get_by_role("button", name="Print")
    button.click()

    assert page.evaluate("window.printed === true")
    assert button.bounding_box()["height"] >= 44
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    expect(page.get_by_role("columnheader", name="Signature")).to_be_visible()
    screenshot(page)


def test_the_sergeant_records_on_a_phone_who_signed_the_sheet(
    roll_call, sergeant, officer, as_person, screenshot
):
    page = as_person(sergeant, PHONE).page

    page.goto(f"/roll-call/{roll_call.pk}/paper")
    assert page.evaluate(SIDEWAYS) <= 0
    assert axe_violations(page) == []
    page.get_by_label(officer.name).check()
    page.get_by_role("button", name="Record signatures").click()

    expect(page.get_by_text("Recorded 1 person as signed on paper")).to_be_visible()
    expect(page.get_by_label(officer.name)).to_have_count(0)
    assert Receipt.objects.filter(user=officer, method="paper").exists()
    screenshot(page)

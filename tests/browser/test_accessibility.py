"""axe-core, phone and desktop layouts, keyboard, motion and colour scheme, in real Chromium."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MIN_TEXT_PX = 16
MIN_TAP_PX = 44

# Every visible piece of text, with its font size; and how far the page scrolls sideways.
LAYOUT_FACTS = """(minimum) => {
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    const unseen = element.closest('svg, [aria-hidden="true"], .visually-hidden');
    if (!node.textContent.trim() || unseen) { continue; }
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    if (!box.width || !box.height || style.visibility === 'hidden') { continue; }
    if (parseFloat(style.fontSize) < minimum) {
      small.push(`${style.fontSize} <${element.localName} class="${element.className}"> `
                 + node.textContent.trim().slice(0, 40));
    }
  }
  const root = document.documentElement;
  return {sideways: root.scrollWidth - root.clientWidth, small: small};
}"""

TAP_TARGETS = """(selector) => Array.from(document.querySelectorAll(selector)).map(element => {
  const box = element.getBoundingClientRect();
  return {name: element.textContent.trim(), width: box.width, height: box.height};
})"""


def assert_fits_a_phone(page):
    facts = page.evaluate(LAYOUT_FACTS, MIN_TEXT_PX)
    assert facts["sideways"] <= 0, f"{page.url} scrolls sideways by {facts['sideways']} px"
    assert facts["small"] == [], f"{page.url}: text under {MIN_TEXT_PX} px: {facts['small']}"


def assert_tap_targets(page, selector):
    targets = page.evaluate(TAP_TARGETS, selector)
    assert targets, f"nothing matches {selector} on {page.url}"
    too_small = [t for t in targets if t["width"] < MIN_TAP_PX or t["height"] < MIN_TAP_PX]
    assert too_small == [], f"{page.url}: tap targets under {MIN_TAP_PX} px: {too_small}"


BACKGROUND = "getComputedStyle(document.body).backgroundColor"


def assert_no_serious_axe_violations(page):
    violations = axe_violations(page)
    print(f"axe {page.url} ({page.viewport_size['width']} px): {len(violations)} serious/critical")
    assert violations == [], "\n".join(violations)


def test_the_sign_in_page_passes_axe_in_both_schemes_and_fits_a_phone(open_session, screenshot):
    page = open_session(PHONE).page

    page.goto("/accounts/login/")

    assert_no_serious_axe_violations(page)
    assert_fits_a_phone(page)
    assert_tap_targets(page, "main button")
    screenshot(page)
    page.emulate_media(color_scheme="dark")
    assert_no_serious_axe_violations(page)


# Every page in the light scheme at 360 px (fits, 16 px text, axe): tests/browser/test_crawl.py.
def test_officer_pages_follow_the_dark_scheme_and_have_big_tap_targets(
    story, officer, as_person, screenshot
):
    page = as_person(officer, PHONE).page
    pages = {
        "feed": ("/", "feed-phone.png"),
        "bulletin": (f"/bulletins/{story['pairing'].pk}/", "bulletin-acknowledge.png"),
        "history": ("/history/", None),
        "two-step-sign-in": ("/accounts/2fa/", None),
        "passkey": ("/accounts/2fa/webauthn/add/", None),
    }

    for name, (url, readme) in pages.items():
        page.emulate_media(color_scheme="light")
        page.goto(url)
        assert page.evaluate(BACKGROUND) == "rgb(255, 255, 255)"
        assert_tap_targets(page, ".site-nav a, .site-nav button")
        if name == "bulletin":
            assert_tap_targets(page, ".button-ack")
        screenshot(page, name, readme=readme)
        page.emulate_media(color_scheme="dark")
        assert page.evaluate(BACKGROUND) == "rgb(18, 20, 23)", "dark mode follows the system"
        assert_no_serious_axe_violations(page)
        screenshot(page, f"{name}-dark")


def test_supervisor_pages_pass_axe_on_a_desk_where_the_dashboard_is_wide(
    story, admin, as_person, screenshot
):
    page = as_person(admin, PHONE).page
    pages = {
        "form": ("/bulletins/new", "bulletin-form.png"),
        "dashboard": (f"/bulletins/{story['pairing'].pk}/coverage", "coverage-dashboard.png"),
        "overview": ("/coverage/", None),
    }

    for name, (url, _) in pages.items():
        page.goto(url)
        assert_tap_targets(page, ".site-nav a, .site-nav button")
        screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)
    for name, (url, readme) in pages.items():
        page.goto(url)
        assert_no_serious_axe_violations(page)
        if name == "form":
            fill_in_an_order(page)
        screenshot(page, name, readme=readme)
        if name == "dashboard":
            assert_uses_the_width(page)
            page.emulate_media(color_scheme="dark")
            assert_no_serious_axe_violations(page)
            page.emulate_media(color_scheme="light")


def fill_in_an_order(page):
    """What a supervisor writes, so the README's picture of the form is not blank."""
    page.get_by_label("Title").fill("Auxiliary officers off the street until further notice")
    page.get_by_label("Instructions").fill("Auxiliary officers work inside station houses only.")
    page.get_by_label("Body", exact=True).fill(
        "No auxiliary patrols, posts or traffic duty from tonight."
    )
    page.get_by_label("Priority").select_option(label="Officer safety - immediate")
    units = page.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("Manhattan South", exact=True).check()
    page.get_by_label("Sworn members").uncheck()
    page.get_by_label("Civilian members").uncheck()
    page.get_by_label("Until further notice", exact=True).check()
    expect(page.locator("#audience-count")).to_contain_text("Reaches 1 person")


def assert_uses_the_width(page):
    content = page.locator("main .container").bounding_box()
    figures = page.locator(".figure-grid > div")
    tops = {round(figures.nth(i).bounding_box()["y"]) for i in range(figures.count())}
    table = page.locator(".unit-breakdown").first.bounding_box()
    assert content["width"] >= 0.9 * DESKTOP["width"], content
    assert table["width"] >= 0.85 * DESKTOP["width"], table
    assert figures.count() == 5  # told, opened, acknowledged, cannot comply, outstanding
    assert len(tops) == 1, "the five figures sit side by side"


def test_keyboard_alone_skip_link_visible_focus_and_acknowledge(story, officer, as_person):
    page = as_person(officer, PHONE).page
    page.goto("/")

    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Skip to main content")
    page.wait_for_function("() => document.activeElement.getBoundingClientRect().top >= 0")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    first_card = page.locator(":focus")
    expect(first_card).to_contain_text(story["pairing"].title)
    assert has_visible_focus(first_card)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/bulletins/{story['pairing'].pk}/")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Acknowledge":
            break
    acknowledge = page.locator(":focus")
    expect(acknowledge).to_have_text("Acknowledge")
    assert has_visible_focus(acknowledge)
    page.keyboard.press("Enter")

    expect(page.get_by_text("Acknowledged. Thank you.")).to_be_visible()


def has_visible_focus(locator):
    style = locator.evaluate(
        "e => { const s = getComputedStyle(e);"
        " return {outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow}; }"
    )
    return (style["outline"] != "none" and style["width"] != "0px") or style["shadow"] != "none"


def test_priority_is_an_icon_and_a_word_never_colour_alone(story, officer, as_person):
    page = as_person(officer, PHONE).page

    page.goto("/")

    badges = page.locator(".bulletin-card .priority")
    seen = {}
    for i in range(badges.count()):
        badge = badges.nth(i)
        icon = badge.locator('[aria-hidden="true"]').text_content().strip()
        word = badge.text_content().replace(icon, "").strip()
        seen[word] = icon
    assert set(seen) == {"Officer safety - immediate", "Priority", "Routine"}, seen
    assert all(seen.values()) and len(set(seen.values())) == 3, seen


def test_motion_follows_prefers_reduced_motion(open_session):
    page = open_session(PHONE).page
    page.goto("/accounts/login/")

    def motion():
        scroll = page.evaluate("getComputedStyle(document.documentElement).scrollBehavior")
        skip = page.locator(".skip-link").evaluate("e => getComputedStyle(e).transitionDuration")
        return scroll, max(float(part.rstrip("s")) for part in skip.split(","))

    page.emulate_media(reduced_motion="no-preference")
    moving = motion()
    page.emulate_media(reduced_motion="reduce")
    still = motion()

    assert moving[0] == "smooth" and moving[1] > 0.1
    assert still[0] == "auto" and still[1] < 0.01

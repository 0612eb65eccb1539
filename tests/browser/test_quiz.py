"""The check of understanding on a phone: the officer answers the pairing order's question
wrong, is sent back to the text without being told the answer, answers right and it is
acknowledged. The admin keeps the agency's lists at 360 px. Pages fit and pass axe."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from bulletins.models import AgencyPolicy, CannotComplyReason, QuizAttempt, Receipt
from tests.browser.conftest import PHONE
from tests.browser.test_accessibility import (
    assert_fits_a_phone,
    assert_no_serious_axe_violations,
    assert_tap_targets,
)
from tests.factories import published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "Can you work a post alone while this order is in force?"
STATEMENT = "I have read this order and will not work a post alone."


@pytest.fixture
def pairing_check(admin, agency, officer):
    return published_bulletin(
        admin,
        agency,
        now=timezone.now(),
        title="All officers paired - no solo posts until further notice",
        instruction="Work in pairs on every post and every tour. No solo posts.",
        statement=STATEMENT,
        questions=[
            {
                "question": QUESTION,
                "choices": ["Yes, if my sergeant agrees", "No - every post is paired"],
                "answer": 1,
            }
        ],
    )


def test_the_officer_answers_the_pairing_check_wrong_then_right(
    as_person, officer, pairing_check, screenshot
):
    page = as_person(officer, PHONE).page
    page.goto(f"/bulletins/{pairing_check.pk}/")
    question = page.get_by_role("group", name=QUESTION)
    expect(question).to_be_visible()
    expect(page.locator(".acknowledgement .statement")).to_have_text(STATEMENT)
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    assert_tap_targets(page, ".quiz-question label, .button-ack")

    question.get_by_label("Yes, if my sergeant agrees").check()
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.get_by_text("Not quite: read the order again, then answer.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(pairing_check.title)
    expect(page.get_by_role("group", name=QUESTION).get_by_role("radio").first).not_to_be_checked()
    assert page.get_by_text("correct", exact=False).count() == 0
    screenshot(page, "not-quite")
    assert_fits_a_phone(page)

    page.get_by_role("group", name=QUESTION).get_by_label("No - every post is paired").check()
    page.get_by_role("button", name="Acknowledge").click()

    expect(page.get_by_text("Acknowledged. Thank you.")).to_be_visible()
    expect(page.get_by_role("group", name=QUESTION)).to_have_count(0)
    attempts = QuizAttempt.objects.filter(user=officer).order_by("pk")
    assert [a.passed for a in attempts] == [False, True]
    receipt = Receipt.objects.get(user=officer, bulletin=pairing_check)
    assert (receipt.statement, receipt.acknowledged_at is not None) == (STATEMENT, True)


def test_the_admin_keeps_the_agency_lists_on_a_phone(as_person, admin, agency, screenshot):
    CannotComplyReason.objects.create(agency=agency, label="No partner available", position=0)
    CannotComplyReason.objects.create(agency=agency, label="Equipment missing", position=1)
    page = as_person(admin, PHONE).page
    page.goto("/agency/lists/")
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)

    page.get_by_label("Default statement the reader signs").fill("Read, understood, will comply.")
    page.get_by_role("button", name="Save statement").click()
    expect(page.get_by_text("Default statement saved.")).to_be_visible()
    reasons = page.get_by_role("region", name='Reasons for "I cannot comply"')
    reasons.get_by_label("New reason").fill("Equipment missing")
    reasons.get_by_role("button", name="Add reason").click()

    expect(page.get_by_text("There is already a reason with this name.")).to_be_visible()
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)
    screenshot(page, "agency-lists-error")

    reasons = page.get_by_role("region", name='Reasons for "I cannot comply"')
    reasons.get_by_role("button", name="Move up Equipment missing").click()
    expect(page.get_by_text("Equipment missing moved up.")).to_be_visible()
    assert AgencyPolicy.objects.get(agency=agency).statement == "Read, understood, will comply."
    labels = CannotComplyReason.objects.filter(agency=agency).order_by("position")
    assert list(labels.values_list("label", flat=True)) == [
        "Equipment missing",
        "No partner available",
    ]


def test_the_sergeant_writes_the_check_of_understanding_on_a_phone(
    as_person, sergeant, precinct17, screenshot
):
    from bulletins.models import Bulletin

    page = as_person(sergeant, PHONE).page
    page.goto("/bulletins/new")
    page.get_by_label("Title").fill("Foot posts paired from the next tour")
    page.get_by_label("Instructions").fill("Work every foot post in pairs.")
    units = page.get_by_role("group", name="Units (with all the units under them)")
    units.get_by_label("17th Precinct", exact=True).check()
    page.get_by_label("Until further notice", exact=True).check()
    page.get_by_text("What the reader signs and answers").click()
    first = page.get_by_role("group", name="Question 1", exact=True)
    first.get_by_label("Question", exact=True).fill(QUESTION)
    first.get_by_label("Choice 1", exact=True).fill("Yes, if my sergeant agrees")
    first.get_by_label("Choice 2", exact=True).fill("No - every post is paired")
    assert_fits_a_phone(page)
    assert_no_serious_axe_violations(page)

    page.get_by_role("button", name="Preview").click()  # no correct choice yet

    expect(page.get_by_text("Choose which choice is correct.")).to_be_visible()
    expect(page.get_by_role("group", name="Question 1", exact=True)).to_be_visible()  # unfolded
    assert_fits_a_phone(page)
    screenshot(page, "check-needs-its-answer")
    first = page.get_by_role("group", name="Question 1", exact=True)
    first.get_by_role("group", name="Which choice is correct?").get_by_label("2").check()
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_text("This is how officers will see it.")).to_be_visible()
    expect(page.locator(".acknowledgement .quiz")).to_contain_text(QUESTION)
    assert Bulletin.objects.get().questions == [
        {
            "question": QUESTION,
            "choices": ["Yes, if my sergeant agrees", "No - every post is paired"],
            "answer": 1,
        }
    ]

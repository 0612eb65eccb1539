"""While you were away on a 360 px phone (issue 23): a Day-tour officer back after three days
signs in, sees what changed first, taps Continue and gets the feed."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from portal import tours
from portal.models import Tour, User
from tests.browser.conftest import PHONE, axe_violations
from tests.factories import published_bulletin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_returning_officer_sees_what_changed_then_the_feed(
    as_person, agency, precinct17, officer, sergeant
):
    Tour.objects.create(unit=agency, name="Day", starts_at=time(7), ends_at=time(15))
    tours.tours_changed(agency)
    now = timezone.now()
    User.objects.filter(pk=officer.pk).update(tour="Day", last_seen_at=now - timedelta(days=3))
    published_bulletin(sergeant, precinct17, now=now - timedelta(days=1), priority=1,
                       title="All officers paired - no solo posts")  # fmt: skip

    session = as_person(officer, PHONE)
    page = session.page
    away_url = page.url
    heading = page.get_by_role("heading", level=1).inner_text()
    listed = page.locator("#while-away").inner_text()
    sideways = page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    violations = axe_violations(page)
    page.get_by_role("link", name="Continue").click()
    page.wait_for_load_state()

    assert away_url.endswith("/away/")
    assert heading == "While you were away"
    assert "All officers paired - no solo posts" in listed
    assert not sideways
    assert violations == []
    assert page.get_by_role("heading", level=1).inner_text() == "In force for me"

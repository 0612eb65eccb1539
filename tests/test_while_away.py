"""While you were away (issue 23): the first feed page of someone coming back (their tour
started since their last visit, or back from leave, or - without a tour - after 8 hours) lists
exactly what changed among the bulletins they may see, once."""

from datetime import time, timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins.services import authoring
from bulletins.while_away import changes_since
from portal import last_seen, tours
from portal.models import Tour, User
from tests.factories import published_bulletin

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def default_tours(agency):
    for position, (name, start, end) in enumerate(
        (("Day", time(7), time(15)), ("Evening", time(15), time(23)),
         ("Midnight", time(23), time(7)))
    ):  # fmt: skip
        Tour.objects.create(unit=agency, name=name, starts_at=start, ends_at=end,
                            position=position)  # fmt: skip
    tours.tours_changed(agency)


def seen(person, at):
    User.objects.filter(pk=person.pk).update(last_seen_at=at)


@pytest.fixture
def story(admin, sergeant, officer, precinct17, precinct75, outsider):
    """What happened around the officer's last visit, three days ago."""
    now = timezone.now()
    last_visit = now - 3 * DAY
    old = published_bulletin(sergeant, precinct17, now=last_visit - DAY, title="Old, untouched")
    amended = published_bulletin(sergeant, precinct17, now=last_visit - DAY, title="Amended")
    authoring.amend_bulletin(amended, by=sergeant, now=last_visit + HOUR, reason="Auxiliaries too",
                             is_material=True, title="Amended: all members")  # fmt: skip
    corrected = published_bulletin(sergeant, precinct17, now=last_visit - DAY, title="Corrected")
    correction = corrected.instruction.rstrip(".")
    authoring.amend_bulletin(corrected, by=sergeant, now=last_visit + HOUR, reason="Typo",
                             is_material=False, instruction=correction)  # fmt: skip
    lifted = published_bulletin(sergeant, precinct17, now=last_visit - DAY, title="Lifted")
    authoring.lift_bulletin(lifted, by=sergeant, now=last_visit + 2 * HOUR, reason="Threat over")
    ended = published_bulletin(sergeant, precinct17, now=last_visit - DAY, title="Ended",
                               expires_at=last_visit + DAY)  # fmt: skip
    new = published_bulletin(sergeant, precinct17, now=last_visit + DAY, title="New", priority=3)
    urgent = published_bulletin(sergeant, precinct17, now=now - HOUR, title="Urgent", priority=1)
    elsewhere = published_bulletin(admin, precinct75, now=now - HOUR, title="Only the 75th")
    before = published_bulletin(sergeant, precinct17, now=last_visit - HOUR, title="Before")
    return {"last_visit": last_visit, "old": old, "amended": amended, "corrected": corrected,
            "lifted": lifted, "ended": ended, "new": new, "urgent": urgent,
            "elsewhere": elsewhere, "before": before}  # fmt: skip


def test_lists_exactly_what_changed_since_the_last_visit_most_urgent_first(officer, story):
    found = changes_since(officer, story["last_visit"], timezone.now())

    assert {b.title: b.changes for b in found} == {
        "Urgent": ["Published"],
        "Amended: all members": ["Amended"],
        "Lifted": ["Lifted"],
        "Ended": ["Ended"],
        "New": ["Published"],
    }
    assert found[0].title == "Urgent"
    assert found[-1].title == "New"  # routine


def test_the_first_feed_page_of_someone_back_from_their_days_off_shows_it_once(
    client, officer, default_tours, story
):
    officer.tour = "Day"
    officer.save(update_fields=["tour"])
    seen(officer, story["last_visit"])
    client.force_login(officer)

    first = client.get(reverse("bulletins:feed"))
    away = client.get(first.url)
    again = client.get(reverse("bulletins:feed"))

    assert first.status_code == HTTPStatus.FOUND
    assert first.url == reverse("bulletins:while_away")
    page = away.content.decode()
    listed = page[
        page.index('id="while-away"') : page.index("</ul>", page.index('id="while-away"'))
    ]
    assert "While you were away" in page
    for key in ("urgent", "amended", "lifted", "ended", "new"):
        assert f'href="{reverse("bulletins:detail", args=[story[key].pk])}"' in listed
    for key in ("old", "corrected", "elsewhere", "before"):
        assert f'href="{reverse("bulletins:detail", args=[story[key].pk])}"' not in listed
    assert f'href="{reverse("bulletins:feed")}">Continue</a>' in page
    assert again.status_code == HTTPStatus.OK
    assert User.objects.get(pk=officer.pk).last_seen_at > story["last_visit"]


def test_someone_seen_during_their_tour_is_not_shown_it(officer, default_tours, rf):
    now = timezone.now()
    officer.tour = "Day"
    day = tours.person_tour(officer)
    started = tours.latest_tour_start(day, now)

    assert not last_seen.is_returning(officer, started + timedelta(minutes=1), now)
    assert last_seen.is_returning(officer, started - timedelta(minutes=1), now)


def test_without_a_tour_after_8_hours_away(officer):
    now = timezone.now()

    assert not last_seen.is_returning(officer, now - 7 * HOUR, now)
    assert last_seen.is_returning(officer, now - 9 * HOUR, now)
    assert not last_seen.is_returning(officer, None, now)


def test_back_from_leave_with_a_tour_is_shown_what_changed(client, officer, default_tours, story):
    """A week of leave: last seen before it, the tour has started since, whenever they come in."""
    officer.tour = "Day"
    officer.is_on_leave = False
    officer.save(update_fields=["tour", "is_on_leave"])
    seen(officer, story["last_visit"] - 4 * DAY)
    client.force_login(officer)

    response = client.get(reverse("bulletins:feed"), follow=True)

    assert "While you were away" in response.content.decode()
    page = response.content.decode()
    listed = page[
        page.index('id="while-away"') : page.index("</ul>", page.index('id="while-away"'))
    ]
    assert f'href="{reverse("bulletins:detail", args=[story["before"].pk])}"' in listed


def test_a_recent_visitor_gets_the_feed_and_no_extra_query(client, officer, story):
    seen(officer, timezone.now() - HOUR)
    client.force_login(officer)
    client.get(reverse("bulletins:feed"))  # notes the visit in the session
    seen_at = User.objects.get(pk=officer.pk).last_seen_at

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("bulletins:feed"))

    assert response.status_code == HTTPStatus.OK
    assert User.objects.get(pk=officer.pk).last_seen_at == seen_at
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert "UPDATE" not in sql
    assert "portal_tour" not in sql


def test_the_page_without_a_return_says_up_to_date(client, officer):
    client.force_login(officer)

    response = client.get(reverse("bulletins:while_away"))

    assert response.status_code == HTTPStatus.OK
    assert "You are up to date." in response.content.decode()

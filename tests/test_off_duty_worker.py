"""Chasing people on their own time (issue 23), with a real Celery worker (a subprocess) on
Redis and PostgreSQL and a moved clock: an officer off duty when an Immediate order goes out is
emailed at once, but reminded only once their tour has started; with CHASE_OFF_DUTY=true, as
before, a delay after publication."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from bulletins.models import Notification, Reminder
from portal import tours
from portal.models import Tour
from tests.factories import UserFactory, published_bulletin
from tests.test_approval_worker import swept_past
from tests.test_worker import celery_processes, wait_for  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]


@pytest.fixture
def day_officer(agency, precinct17):
    for position, (name, start, end) in enumerate(((
        "Day", time(7), time(15)), ("Evening", time(15), time(23)),
        ("Midnight", time(23), time(7)))):  # fmt: skip
        Tour.objects.create(unit=agency, name=name, starts_at=start, ends_at=end, position=position)
    tours.tours_changed(agency)
    return UserFactory(email="day@agency.test", name="Dee Day", unit=precinct17, tour="Day")


def next_local_3am():
    """The next 03:00 agency time, at least an hour away: the Day tour starts 4 hours later."""
    now = timezone.localtime()
    moment = datetime.combine(now.date(), time(3), tzinfo=now.tzinfo)
    while moment < now + timedelta(hours=1):
        moment = datetime.combine(moment.date() + timedelta(days=1), time(3), tzinfo=now.tzinfo)
    return moment


def emailed(bulletin, person, event):
    return Notification.objects.filter(
        event__bulletin=bulletin, event__event=event, user=person, sent_at__isnull=False
    ).exists()


def reminded(bulletin, person):
    return Reminder.objects.filter(
        recipient__bulletin=bulletin, recipient__user=person, step=0
    ).exists()


def test_an_officer_off_duty_at_publication_is_reminded_after_their_tour_starts(
    admin,
    sergeant,
    precinct17,
    day_officer,
    celery_processes,  # noqa: F811
):
    t0 = next_local_3am()
    tour_starts = t0 + timedelta(hours=4)
    order = published_bulletin(admin, precinct17, now=t0, priority=1, title="Pair up now")
    celery_processes.start_worker()

    wait_for(lambda: emailed(order, day_officer, "published"), message="the immediate email")
    swept_past(sergeant, precinct17, t0 + timedelta(minutes=20))
    at_20_minutes = reminded(order, day_officer)
    swept_past(sergeant, precinct17, tour_starts + timedelta(minutes=10))
    ten_minutes_into_tour = reminded(order, day_officer)
    swept_past(sergeant, precinct17, tour_starts + timedelta(minutes=16))
    wait_for(lambda: emailed(order, day_officer, "reminder"), message="the reminder email")

    assert not at_20_minutes
    assert not ten_minutes_into_tour
    assert reminded(order, day_officer)
    assert reminded(order, sergeant)  # no tour: chased as before


def test_with_chase_off_duty_true_the_officer_is_reminded_as_before(
    admin,
    sergeant,
    precinct17,
    day_officer,
    celery_processes,  # noqa: F811
):
    t0 = next_local_3am()
    order = published_bulletin(admin, precinct17, now=t0, priority=1, title="Pair up now")
    celery_processes.env["CHASE_OFF_DUTY"] = "true"
    celery_processes.start_worker()

    swept_past(sergeant, precinct17, t0 + timedelta(minutes=16))
    wait_for(lambda: emailed(order, day_officer, "reminder"), message="the reminder email")

    assert emailed(order, day_officer, "published")
    assert reminded(order, day_officer)

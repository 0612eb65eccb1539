"""The per-person feed cache: served while nothing changed, never past a change or the clock."""

from datetime import timedelta
from http import HTTPStatus

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins.caching import feed as kept_feed
from bulletins.models import Bulletin
from bulletins.services import authoring, clock, reading
from tests.factories import published_bulletin


def feed(client):
    response = client.get(reverse("bulletins:feed"))
    assert response.status_code == HTTPStatus.OK
    return response.content.decode()


def test_an_unchanged_feed_is_served_without_the_database_beyond_the_session_user(
    client, sergeant, officer
):
    published_bulletin(sergeant, sergeant.unit, title="Paired patrols")
    client.force_login(officer)
    feed(client)

    with CaptureQueriesContext(connection) as queries:
        page = feed(client)

    assert "Paired patrols" in page
    assert [q["sql"] for q in queries if "bulletins_" in q["sql"]] == []


def test_a_publication_shows_at_once_on_a_cached_feed(client, sergeant, officer):
    client.force_login(officer)
    assert "Vehicle check" not in feed(client)

    published_bulletin(sergeant, sergeant.unit, title="Vehicle check")

    assert "Vehicle check" in feed(client)


def test_an_acknowledgement_shows_at_once_on_a_cached_feed(client, sergeant, officer):
    order = published_bulletin(sergeant, sergeant.unit, title="Paired patrols")
    client.force_login(officer)
    assert "Not yet acknowledged" in feed(client)

    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())

    assert "Not yet acknowledged" not in feed(client)


def test_a_cached_bulletin_leaves_the_feed_at_its_end_without_any_sweep(client, sergeant, officer):
    now = timezone.now()
    published_bulletin(
        sergeant, sergeant.unit, title="20 minutes", expires_at=now + timedelta(minutes=20)
    )
    client.force_login(officer)
    assert "20 minutes" in feed(client)

    with time_machine.travel(now + timedelta(minutes=20, seconds=1)):
        page = feed(client)

    assert "20 minutes" not in page
    assert Bulletin.objects.get(title="20 minutes").status == Bulletin.Status.IN_FORCE


def test_ages_tick_on_a_cached_page(client, sergeant, officer):
    start = timezone.now()
    order = published_bulletin(sergeant, sergeant.unit, now=start)
    clock.reaffirm_bulletin(order, by=sergeant, now=start)
    client.force_login(officer)
    with time_machine.travel(start + timedelta(minutes=5, seconds=10)):
        assert "re-affirmed 5\xa0minutes ago" in feed(client)

    with time_machine.travel(start + timedelta(minutes=9, seconds=10)):
        page = feed(client)

    assert "re-affirmed 9\xa0minutes ago" in page


def test_the_cached_page_carries_a_fresh_csrf_token_and_no_old_message(client, sergeant, officer):
    order = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    client.post(reverse("bulletins:acknowledge", args=[order.pk]), {"version": 1})
    assert "Acknowledged. Thank you." in feed(client)

    page = feed(client)

    assert "Acknowledged. Thank you." not in page
    assert kept_feed.CSRF_PLACEHOLDER not in page
    assert 'name="csrfmiddlewaretoken" value="' in page


def test_the_polled_fragment_answers_204_then_304_from_the_cache(client, sergeant, officer):
    published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    first = client.get(reverse("bulletins:feed_items"))
    etag = first["ETag"]

    unchanged = client.get(reverse("bulletins:feed_items"), {"etag": etag.strip('"')})
    not_modified = client.get(reverse("bulletins:feed_items"), headers={"if-none-match": etag})

    assert first.status_code == HTTPStatus.OK
    assert unchanged.status_code == HTTPStatus.NO_CONTENT
    assert not_modified.status_code == HTTPStatus.NOT_MODIFIED


def test_people_never_see_each_others_cached_feed(client, sergeant, officer, outsider):
    published_bulletin(sergeant, sergeant.unit, title="17th only")
    client.force_login(officer)
    assert "17th only" in feed(client)

    client.force_login(outsider)

    assert "17th only" not in feed(client)


def test_a_person_moved_to_another_unit_sees_their_new_feed_at_once(
    client, sergeant, officer, outsider
):
    published_bulletin(sergeant, sergeant.unit, title="17th only")
    client.force_login(outsider)
    assert "17th only" not in feed(client)

    outsider.unit = officer.unit
    outsider.save()

    assert "17th only" in feed(client)


def test_a_large_audience_is_told_by_a_task_after_commit(
    settings, sergeant, officer, auxiliary, django_capture_on_commit_callbacks
):
    settings.FAN_OUT_INLINE_LIMIT = 1
    draft = authoring.save_draft(
        by=sergeant, targets=[(sergeant.unit, True)], now=timezone.now(), title="Pairs",
        instruction="Work in pairs.", body="", kind="order", priority=1, to_sworn=True,
        to_auxiliary=True, to_civilian=True, supervisors_only=False, effective_at=None,
        expires_at=None,
    )  # fmt: skip

    with django_capture_on_commit_callbacks() as callbacks:
        bulletin = authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    assert bulletin.recipients.count() == 0
    assert Bulletin.objects.filter(pk=bulletin.pk).addressed_to(officer).exists()
    assert len([c for c in callbacks if c.__module__ != "portal.stamps"]) == 2
    told = authoring.write_recipients(bulletin.pk, now=timezone.now())
    assert told == bulletin.members().count() >= 3
    assert authoring.write_recipients(bulletin.pk, now=timezone.now()) == 0


def test_the_sweep_tells_the_audience_when_the_task_was_lost(settings, sergeant, officer):
    from bulletins.services import clock

    settings.FAN_OUT_INLINE_LIMIT = 1
    bulletin = published_bulletin(sergeant, sergeant.unit)
    assert bulletin.recipients.count() == 0

    done = clock.sweep(timezone.now())

    assert done["told"] == 1
    assert bulletin.recipients.filter(user=officer).exists()
    assert clock.sweep(timezone.now())["told"] == 0


def _nassau():
    from portal.models import Unit, User
    from tests.factories import UserFactory, make_unit

    nassau = make_unit("Nassau County Police Department", kind=Unit.Kind.AGENCY)
    precinct = make_unit("First Precinct", parent=nassau)
    sergeant = UserFactory(unit=precinct, role=User.Role.SUPERVISOR)
    return precinct, sergeant, UserFactory(unit=precinct)


def _bulletin_queries(client):
    with CaptureQueriesContext(connection) as queries:
        page = feed(client)
    return page, len([q for q in queries if "bulletins_" in q["sql"]])


def test_a_publication_in_another_agency_leaves_a_kept_feed_alone(client, sergeant, officer):
    precinct, nassau_sergeant, nassau_officer = _nassau()
    published_bulletin(sergeant, sergeant.unit, title="Metro pairs")
    client.force_login(officer)
    feed(client)

    published_bulletin(nassau_sergeant, precinct, title="Nassau pairs for 36 hours")
    kept, metro_queries = _bulletin_queries(client)
    published_bulletin(sergeant, sergeant.unit, title="Metro vehicle checks")
    changed, changed_queries = _bulletin_queries(client)
    client.force_login(nassau_officer)

    assert "Metro pairs" in kept and "Nassau" not in kept
    assert metro_queries == 0  # served as kept: the counter is the agency's
    assert changed_queries > 0 and "Metro vehicle checks" in changed
    assert "Nassau pairs for 36 hours" in feed(client)


def test_a_superusers_kept_feed_follows_every_agency(client, sergeant):
    from tests.factories import UserFactory

    precinct, nassau_sergeant, _ = _nassau()
    root = UserFactory(unit=sergeant.unit, is_superuser=True, is_staff=True)
    client.force_login(root)
    feed(client)
    _, unchanged = _bulletin_queries(client)

    published_bulletin(nassau_sergeant, precinct, title="Nassau pairs for 36 hours")
    _, after = _bulletin_queries(client)

    assert unchanged == 0
    assert after > 0


def test_moving_a_unit_to_another_agency_forgets_both_agencies_kept_feeds(client, sergeant, admin):
    from portal import people
    from portal.models import Unit

    precinct, _, nassau_officer = _nassau()
    client.force_login(nassau_officer)
    feed(client)
    client.force_login(admin)  # stays in Metro; the orders they oversee leave with the unit
    feed(client)

    Unit.objects.move(Unit.objects.get(pk=sergeant.unit.pk), Unit.objects.get(pk=precinct.pk),
                      "last-child")  # fmt: skip
    people.resync_agencies(Unit.objects.get(pk=sergeant.unit.pk))
    _, metro_after = _bulletin_queries(client)
    client.force_login(nassau_officer)
    _, nassau_after = _bulletin_queries(client)

    assert metro_after > 0 and nassau_after > 0

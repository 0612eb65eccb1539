"""A bulletin's coverage figures (`bulletins.coverage`): kept while nothing they count changes,
computed again by the workers while someone watches, per scope, never across a change of the
bulletin itself."""

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins import coverage
from bulletins.models import Recipient
from bulletins.services import authoring, reading
from tests.factories import UserFactory, approver

pytestmark = pytest.mark.django_db


def _shown(client, bulletin, **headers):
    """The figures the coverage page shows ({"Told": 6, ...}), and the number of recipient
    scans the request ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("bulletins:coverage", args=[bulletin.pk]), **headers)
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    figures = dict(re.findall(r"<dt>(\w+)</dt><dd>(?:<a [^>]*>)?(\d+)", page))
    # A scan of the audience; the tally of who answered back reads only the answerers' rows.
    scans = sum(
        'FROM "bulletins_recipient"' in query["sql"]
        and "GROUP BY" in query["sql"]
        and '"bulletins_response"' not in query["sql"]
        for query in queries.captured_queries
    )
    return {name: int(count) for name, count in figures.items()}, scans, page


def test_unchanged_figures_are_kept_without_scanning_again(client, pairing, admin):
    client.force_login(admin)
    first, first_scans, _ = _shown(client, pairing)
    # A write that bypasses the services is not seen: the kept figures are what is shown.
    Recipient.objects.filter(bulletin=pairing, acknowledged_version__isnull=True).update(
        acknowledged_version=1, acknowledged_at=timezone.now()
    )

    again, scans, page = _shown(client, pairing)

    assert first == {"Told": 6, "Opened": 5, "Acknowledged": 4, "Outstanding": 2}
    assert (first_scans, scans) == (1, 0)
    assert again == first
    assert "Figures as of" in page


def _acknowledge_by_the_page(client, bulletin, person):
    client.force_login(person)
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})


def _acknowledge_by_the_service(client, bulletin, person):
    reading.acknowledge(bulletin.pk, user=person, version_number=1, now=timezone.now())


def _open_by_the_page(client, bulletin, person):
    client.force_login(person)
    client.get(reverse("bulletins:detail", args=[bulletin.pk]))


def _refreshed_by_the_workers(client, bulletin):
    """What the page shows right after a change, then after the workers' next run (and how
    many figures that run computed), and what it scanned each time."""
    before, before_scans, _ = _shown(client, bulletin)
    computed = coverage.refresh_watched()
    after, after_scans, _ = _shown(client, bulletin)
    return before, after, computed, (before_scans, after_scans)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_acknowledge_by_the_page, {"Opened": 6, "Acknowledged": 5, "Outstanding": 1}),
        (_acknowledge_by_the_service, {"Opened": 6, "Acknowledged": 5, "Outstanding": 1}),
        (_open_by_the_page, {"Opened": 6, "Acknowledged": 4, "Outstanding": 2}),
    ],
)
def test_a_reader_changes_the_figures_at_the_workers_next_run(
    client, pairing, admin, squad_officer, change, expected
):
    client.force_login(admin)
    shown_first, _, _ = _shown(client, pairing)

    change(client, pairing, squad_officer)
    client.force_login(admin)
    before, after, computed, scans = _refreshed_by_the_workers(client, pairing)

    assert before == shown_first  # a few seconds old: the request scans nothing
    assert computed == 1
    assert after == {"Told": 6, **expected}
    assert scans == (0, 0)


def test_changed_figures_are_computed_in_the_request_once_the_workers_fall_behind(
    client, pairing, admin, squad_officer
):
    client.force_login(admin)
    _shown(client, pairing)
    _acknowledge_by_the_service(client, pairing, squad_officer)
    client.force_login(admin)
    late = timezone.now() + timedelta(seconds=coverage.stale_seconds())

    with time_machine.travel(late):
        figures, scans, _ = _shown(client, pairing)

    assert figures == {"Told": 6, "Opened": 6, "Acknowledged": 5, "Outstanding": 1}
    assert scans == 1


def test_someone_told_later_changes_the_figures_at_the_workers_next_run(
    client, pairing, admin, precinct17
):
    client.force_login(admin)
    _shown(client, pairing)
    newcomer = UserFactory(unit=precinct17)  # moved in after publication

    _open_by_the_page(client, pairing, newcomer)
    client.force_login(admin)
    _, figures, _, _ = _refreshed_by_the_workers(client, pairing)

    assert figures == {"Told": 7, "Opened": 6, "Acknowledged": 4, "Outstanding": 3}


def test_telling_more_people_changes_the_figures_at_the_workers_next_run(
    client, pairing, admin, precinct17
):
    client.force_login(admin)
    _shown(client, pairing)
    UserFactory(unit=precinct17)

    told = authoring.add_recipients(pairing, pairing.members(), now=timezone.now())
    _, figures, _, _ = _refreshed_by_the_workers(client, pairing)

    assert told == 1
    assert figures["Told"] == 7 and figures["Outstanding"] == 3


def test_amending_or_lifting_computes_the_figures_again(client, pairing, admin, officer):
    client.force_login(admin)
    _shown(client, pairing)

    authoring.amend_bulletin(pairing, by=admin, now=timezone.now(), reason="Auxiliaries too",
                             is_material=True, title="All members paired",
                             approved_by=approver())  # agency-wide: approved again  # fmt: skip
    amended, amended_scans, _ = _shown(client, pairing)
    pairing.refresh_from_db()
    authoring.lift_bulletin(pairing, by=admin, now=timezone.now(), reason="Threat over")
    _, lifted_scans, page = _shown(client, pairing)

    # Only the admin, who made the change, has acknowledged version 2.
    assert amended["Acknowledged"] == 1 and amended["Outstanding"] == 5
    assert (amended_scans, lifted_scans) == (1, 1)
    assert "Version 1 only" in page


def test_kept_figures_are_kept_per_scope(client, pairing, admin, sergeant):
    client.force_login(admin)
    agency_wide, _, _ = _shown(client, pairing)
    client.force_login(sergeant)
    precinct, precinct_scans, _ = _shown(client, pairing)
    client.force_login(admin)
    again, again_scans, _ = _shown(client, pairing)

    assert (agency_wide["Told"], precinct["Told"], again["Told"]) == (6, 4, 6)
    assert (precinct_scans, again_scans) == (1, 0)


def test_who_is_on_leave_is_read_at_every_view(client, pairing, admin, outsider):
    client.force_login(admin)
    _, _, before = _shown(client, pairing)
    outsider.is_on_leave = True
    outsider.save()

    _, scans, after = _shown(client, pairing)
    htmx = {"HX-Request": "true", "HX-Target": "coverage-figures"}
    _, _, refreshed = _shown(client, pairing, headers=htmx)

    assert "on leave" not in before
    assert scans == 0
    assert "(1 on leave)" in after
    assert "(1 on leave)" in refreshed
    assert "<html" not in refreshed and "Figures as of" in refreshed


def test_kept_figures_are_shown_a_minute_unchanged_and_seconds_changed(
    client, pairing, admin, squad_officer
):
    client.force_login(admin)
    _shown(client, pairing)
    pairing.refresh_from_db()
    scope = coverage.scope_of(admin)
    stamp, found = coverage._read(pairing, scope)
    entry = found[coverage._key(pairing.pk, scope)]
    computed_at = timezone.now()

    def shown(stamp, seconds):
        return coverage.shown(entry, stamp, computed_at + timedelta(seconds=seconds))

    _acknowledge_by_the_service(client, pairing, squad_officer)
    changed, _ = coverage._read(pairing, scope)
    pairing.refresh_from_db()
    pairing.status = "lifted"
    lifted, _ = coverage._read(pairing, scope)
    stale = coverage.stale_seconds()

    assert shown(stamp, coverage.MAX_AGE_SECONDS - 1)
    assert not shown(stamp, coverage.MAX_AGE_SECONDS)
    assert shown(changed, stale - 1) and not shown(changed, stale)
    assert not shown(lifted, 0)  # never across a change of the bulletin itself


def test_the_workers_compute_only_watched_figures_that_changed_or_aged(
    client, pairing, admin, sergeant, squad_officer
):
    client.force_login(admin)
    _shown(client, pairing)
    client.force_login(sergeant)
    _shown(client, pairing)

    unchanged = coverage.refresh_watched()
    _acknowledge_by_the_service(client, pairing, squad_officer)
    both_scopes = coverage.refresh_watched()
    with time_machine.travel(timezone.now() + timedelta(seconds=coverage.REFRESH_AFTER_SECONDS)):
        aged = coverage.refresh_watched()
    # The sergeant's page was closed (the watch ran out); the admin lost the right to follow it.
    cache.delete(coverage._watch_key(pairing.pk, coverage.scope_of(sergeant)))
    admin.role, admin.is_superuser = "officer", False
    admin.save()
    _acknowledge_by_the_service(client, pairing, UserFactory(unit=squad_officer.unit))
    nobody = coverage.refresh_watched()

    assert (unchanged, both_scopes, aged, nobody) == (0, 2, 2, 0)
    assert cache.get(coverage._watched_key()) == set()


def test_a_page_left_open_stays_watched_without_a_gap(client, pairing, admin):
    client.force_login(admin)
    key = coverage._watch_key(pairing.pk, coverage.scope_of(admin))
    _shown(client, pairing)
    first = cache.get(key)["at"]
    half = timedelta(seconds=coverage.WATCH_SECONDS / 2)

    with time_machine.travel(timezone.now() + half - timedelta(seconds=2)):
        _shown(client, pairing)
        kept = cache.get(key)["at"]
    with time_machine.travel(timezone.now() + half):
        _shown(client, pairing)
        renewed = cache.get(key)["at"]

    assert kept == first
    assert renewed >= first + half.total_seconds()


def test_the_workers_refresh_the_figures_every_few_seconds():
    schedule = settings.CELERY_BEAT_SCHEDULE["refresh-coverage"]

    assert schedule["task"] == "bulletins.tasks.refresh_coverage_task"
    assert schedule["schedule"] == settings.COVERAGE_REFRESH_SECONDS == 5
    assert coverage.stale_seconds() == 15

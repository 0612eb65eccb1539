import threading
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Receipt, Recipient
from bulletins.services import authoring, reading
from portal.models import AuditEvent
from tests.factories import published_bulletin

pytestmark = pytest.mark.django_db


def test_feed_lists_bulletins_in_force_for_me_most_urgent_first(client, sergeant, officer):
    routine = published_bulletin(sergeant, sergeant.unit, title="Routine notice", priority=3)
    urgent = published_bulletin(sergeant, sergeant.unit, title="Pair up now", priority=1)
    client.force_login(officer)

    response = client.get(reverse("bulletins:feed"))

    assert response.status_code == HTTPStatus.OK
    titles = [b.title for b in response.context["bulletins"]]
    assert titles == [urgent.title, routine.title]
    assert "Not yet acknowledged" in response.content.decode()


def test_feed_leaves_out_bulletins_for_other_units(client, sergeant, outsider):
    published_bulletin(sergeant, sergeant.unit, title="Seventeen only")
    client.force_login(outsider)

    response = client.get(reverse("bulletins:feed"))

    assert response.context["bulletins"] == []
    assert "Seventeen only" not in response.content.decode()


def test_feed_poll_answers_204_when_nothing_changed(client, sergeant, officer):
    published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    first = client.get(reverse("bulletins:feed_items"))
    etag = first.context["etag"]

    unchanged = client.get(reverse("bulletins:feed_items"), {"etag": etag})
    published_bulletin(sergeant, sergeant.unit, title="Second order")
    changed = client.get(reverse("bulletins:feed_items"), {"etag": etag})

    assert unchanged.status_code == HTTPStatus.NO_CONTENT
    assert changed.status_code == HTTPStatus.OK
    assert "Second order" in changed.content.decode()


def test_opening_records_the_first_open_of_the_version(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)

    client.get(reverse("bulletins:detail", args=[bulletin.pk]))
    first = Receipt.objects.get(user=officer, bulletin=bulletin).opened_at
    client.get(reverse("bulletins:detail", args=[bulletin.pk]))

    receipt = Receipt.objects.get(user=officer, bulletin=bulletin)
    assert receipt.opened_at == first
    assert receipt.acknowledged_at is None
    assert Recipient.objects.get(user=officer, bulletin=bulletin).first_opened_at == first


def test_acknowledge_records_evidence(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk]))
    assert "Acknowledge</button>" in page.content.decode()
    assert reading.ACKNOWLEDGEMENT_STATEMENT in page.content.decode()

    response = client.post(
        reverse("bulletins:acknowledge", args=[bulletin.pk]),
        {"version": 1},
        HTTP_USER_AGENT="PatrolCar/1.0",
        REMOTE_ADDR="10.1.2.3",
    )

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("bulletins:detail", args=[bulletin.pk])
    receipt = Receipt.objects.get(user=officer, bulletin=bulletin)
    assert receipt.acknowledged_at is not None
    assert receipt.statement == reading.ACKNOWLEDGEMENT_STATEMENT
    assert receipt.content_hash == bulletin.versions.get().content_hash
    assert len(receipt.content_hash) == 64
    assert receipt.ip == "10.1.2.3"
    assert receipt.user_agent == "PatrolCar/1.0"
    assert receipt.auth_method
    recipient = Recipient.objects.get(user=officer, bulletin=bulletin)
    assert recipient.acknowledged_version == 1
    event = AuditEvent.objects.get(action="bulletin.acknowledge", actor=officer)
    assert (event.actor, event.object_version, event.ip) == (officer, 1, "10.1.2.3")


@pytest.mark.parametrize("version", ["1", "9"])
def test_acknowledge_goes_back_to_the_bulletin_also_under_a_path_prefix(
    client, sergeant, officer, version
):
    """Recorded or refused (a version that does not exist): back to the bulletin's page, under
    the prefix the portal is served at."""
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    url = reverse("bulletins:acknowledge", args=[bulletin.pk])

    plain = client.post(url, {"version": version})
    prefixed = client.post(url, {"version": version}, SCRIPT_NAME="/portal")

    assert plain["Location"] == f"/bulletins/{bulletin.pk}/"
    assert prefixed["Location"] == f"/portal/bulletins/{bulletin.pk}/"


def test_acknowledging_twice_records_once(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    url = reverse("bulletins:acknowledge", args=[bulletin.pk])

    client.post(url, {"version": 1})
    first = Receipt.objects.get(user=officer).acknowledged_at
    client.post(url, {"version": 1})

    assert Receipt.objects.get(user=officer).acknowledged_at == first
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("way", ["the long way", "at once"])
def test_concurrent_acknowledgements_record_one(way, sergeant, officer):
    from tests.factories import UserFactory

    bulletin = published_bulletin(sergeant, sergeant.unit)
    if way == "the long way":  # someone who moved in after publication: not told yet
        officer = UserFactory(unit=sergeant.unit)
    now = timezone.now()
    barrier = threading.Barrier(6)
    results = []

    def acknowledge():
        barrier.wait()
        try:
            recorded = reading.acknowledge(
                bulletin.pk, user=officer, version_number=1, now=now, request=_ack_request()
            )
            results.append(recorded)
        finally:
            connection.close()

    threads = [threading.Thread(target=acknowledge) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 5 + [True]
    assert Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).count() == 1
    assert Recipient.objects.get(user=officer, bulletin=bulletin).acknowledged_version == 1


def test_material_amendment_asks_to_acknowledge_again_and_shows_the_difference(
    client, sergeant, officer
):
    bulletin = published_bulletin(sergeant, sergeant.unit, instruction="Work in pairs.")
    client.force_login(officer)
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})
    authoring.amend_bulletin(
        bulletin,
        by=sergeant,
        now=timezone.now(),
        reason="Auxiliaries off the street",
        is_material=True,
        instruction="Work in pairs. Auxiliaries do not patrol.",
    )

    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 2})

    assert "Changed - acknowledge again" in page
    assert "Auxiliaries do not patrol.</ins>" in page
    recipient = Recipient.objects.get(user=officer, bulletin=bulletin)
    assert recipient.acknowledged_version == 2
    assert Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).count() == 2


def test_non_material_amendment_keeps_the_acknowledgement(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    client.force_login(officer)
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})
    authoring.amend_bulletin(
        bulletin,
        by=sergeant,
        now=timezone.now(),
        reason="Typo",
        is_material=False,
        title="All officers paired - no solo posts until further notise",
    )

    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()

    assert "Changed - acknowledge again" not in page
    assert "You acknowledged version 1" in page


def test_stale_version_cannot_be_acknowledged_after_a_material_change(sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    authoring.amend_bulletin(
        bulletin, by=sergeant, now=timezone.now(), reason="r", is_material=True, title="New"
    )
    bulletin.refresh_from_db()

    with pytest.raises(Exception, match="changed since you opened it"):
        reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=timezone.now())

    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()


def test_lifted_bulletin_reads_lifted_with_reason_and_cannot_be_acknowledged(
    client, sergeant, officer
):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Threat over")
    client.force_login(officer)

    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})

    assert "Lifted" in page
    assert "Threat over" in page
    assert "Acknowledge</button>" not in page
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()


def test_history_lists_ended_and_lifted_with_search(client, sergeant, officer):
    now = timezone.now()
    lifted = published_bulletin(sergeant, sergeant.unit, title="Vehicle sabotage checks")
    authoring.lift_bulletin(lifted, by=sergeant, now=now, reason="Done")
    ended = published_bulletin(
        sergeant,
        sergeant.unit,
        title="Paired for 36 hours",
        effective_at=None,
        expires_at=now + timedelta(seconds=1),
        now=now,
    )
    live = published_bulletin(sergeant, sergeant.unit, title="Still in force")
    client.force_login(officer)

    with pytest.MonkeyPatch.context() as patch:
        later = now + timedelta(seconds=2)
        patch.setattr(timezone, "now", lambda: later)
        everything = client.get(reverse("bulletins:history")).context["bulletins"]
        found = client.get(reverse("bulletins:history"), {"q": "sabotage"}).context["bulletins"]

    assert {b.pk for b in everything} == {lifted.pk, ended.pk}
    assert live.pk not in {b.pk for b in everything}
    assert [b.pk for b in found] == [lifted.pk]


def test_restricted_bulletin_view_is_audited_every_time(client, admin, precinct75, outsider):
    bulletin = published_bulletin(admin, precinct75, kind="intelligence", priority=2)
    client.force_login(outsider)

    first = client.get(reverse("bulletins:detail", args=[bulletin.pk]))
    client.get(reverse("bulletins:detail", args=[bulletin.pk]))

    assert "Restricted - do not forward" in first.content.decode()
    assert AuditEvent.objects.filter(action="bulletin.view_restricted", actor=outsider).count() == 2


def test_unacknowledged_immediate_order_shows_a_banner_on_every_page(client, sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit, title="Pair up", priority=1)
    client.force_login(officer)

    before = client.get(reverse("bulletins:history")).content.decode()
    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})
    after = client.get(reverse("bulletins:history")).content.decode()

    assert "urgent-banner" in before
    assert "urgent-banner" not in after


def test_record_open_says_whether_it_recorded_the_first_open(sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    version = bulletin.versions.get()
    now = timezone.now()

    first = reading.record_open(bulletin, version, user=officer, now=now)
    again = reading.record_open(bulletin, version, user=officer, now=now + timedelta(minutes=5))

    assert (first, again) == (True, False)
    receipt = Receipt.objects.get(user=officer, version=version)
    assert receipt.opened_at == now
    assert Recipient.objects.get(bulletin=bulletin, user=officer).first_opened_at == now


def test_the_banner_is_kept_until_something_changes_it(client, sergeant, officer):
    client.force_login(officer)
    client.get(reverse("bulletins:history"))

    statements = []

    def collect(execute, sql, *args):
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(collect):
        quiet = client.get(reverse("bulletins:history")).content.decode()
    published_bulletin(sergeant, sergeant.unit, title="Pair up", priority=1)
    published = client.get(reverse("bulletins:history")).content.decode()

    banner_query = 'SELECT "bulletins_bulletin"."id", "bulletins_bulletin"."title" FROM'
    assert statements and not [sql for sql in statements if sql.startswith(banner_query)]
    assert "urgent-banner" not in quiet
    assert "urgent-banner" in published and "Pair up" in published


def test_the_kept_banner_follows_the_clock(sergeant, officer, django_assert_num_queries):
    from bulletins.caching.feed import urgent_banner as kept_urgent

    now = timezone.now()
    order = published_bulletin(sergeant, sergeant.unit, now=now, title="Pair up", priority=1,
                               effective_at=now + timedelta(minutes=10),
                               expires_at=now + timedelta(minutes=20))  # fmt: skip

    with django_assert_num_queries(1):  # the Orders and when the clock next changes them
        before = kept_urgent(officer, now)
    during = kept_urgent(officer, now + timedelta(minutes=11))
    after = kept_urgent(officer, now + timedelta(minutes=21))

    assert before == [] and after == []
    assert during == [{"pk": order.pk, "title": "Pair up"}]


# The one-statement acknowledgement (PostgreSQL) and the long way it falls back to


def _ack_request():
    from django.test import RequestFactory

    request = RequestFactory().post("/", HTTP_USER_AGENT="PatrolCar/1.0", REMOTE_ADDR="10.1.2.3")
    request.session = {"account_authentication_methods": [{"method": "password"}]}
    return request


def _evidence(user):
    receipt = Receipt.objects.get(user=user, acknowledged_at__isnull=False)
    recipient = Recipient.objects.get(user=user, bulletin=receipt.bulletin)
    event = AuditEvent.objects.get(action="bulletin.acknowledge", actor=user)
    return (
        {name: getattr(receipt, name) for name in ("bulletin_id", "version_id", "statement",
                                                   "content_hash", "auth_method", "ip",
                                                   "user_agent")},
        (recipient.acknowledged_version, recipient.acknowledged_at == receipt.acknowledged_at,
         recipient.first_opened_at is not None),
        {name: getattr(event, name) for name in ("action", "object_type", "object_id",
                                                 "object_version", "outcome", "detail",
                                                 "agency_id", "ip", "user_agent")},
    )  # fmt: skip


def test_acknowledging_at_once_writes_the_same_evidence_as_the_long_way(
    sergeant, precinct17, django_assert_num_queries
):
    from portal import audit
    from tests.factories import UserFactory

    quick = UserFactory(unit=precinct17)
    bulletin = published_bulletin(sergeant, precinct17)
    slow = UserFactory(unit=precinct17)  # moved in after publication: the long way
    now = timezone.now()
    request = _ack_request()

    with django_assert_num_queries(1):
        assert reading.acknowledge(bulletin.pk, user=quick, version_number=1, now=now,
                                   request=request)  # fmt: skip
    assert reading.acknowledge(bulletin.pk, user=slow, version_number=1, now=now, request=request)

    assert _evidence(quick) == _evidence(slow)
    assert _evidence(quick)[1] == (1, True, True)
    event = AuditEvent.objects.get(action="bulletin.acknowledge", actor=quick)
    assert (event.actor_label, event.at) == (quick.email, audit.to_utc_millisecond(now))
    sealed = audit.seal_all()
    assert audit.first_broken_link() == (None, sealed)


@pytest.mark.django_db(transaction=True)
def test_the_statement_acknowledging_at_once_is_prepared_on_a_kept_connection(
    sergeant, precinct17, django_assert_num_queries
):
    from tests.factories import UserFactory

    connection.close()  # a new connection: nothing prepared on it yet
    people = UserFactory.create_batch(7, unit=precinct17)
    bulletin = published_bulletin(sergeant, precinct17)
    request = _ack_request()

    def prepared():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ["%WITH target AS%"],
            )
            return cursor.fetchone()[0]

    before = prepared()
    with django_assert_num_queries(len(people)):  # each still counted, through Django's wrapper
        recorded = [
            reading.acknowledge(bulletin.pk, user=person, version_number=1,
                                now=timezone.now(), request=request)
            for person in people
        ]  # fmt: skip

    assert connection.connection.prepare_threshold == 5
    assert (before, prepared()) == (0, 1)
    assert recorded == [True] * 7
    acknowledged = Receipt.objects.filter(bulletin=bulletin, acknowledged_at__isnull=False)
    assert acknowledged.filter(user__in=people).count() == 7  # and the issuer's
    assert _evidence(people[-1]) == _evidence(people[0])  # prepared or not, the same record


def test_an_acknowledgement_bumps_the_feed_and_the_figures_in_one_round_trip(
    sergeant, precinct17, redis_commands
):
    from django.core.cache import cache

    from bulletins.caching import changes
    from portal import stamps
    from tests.factories import UserFactory

    officer = UserFactory(unit=precinct17)
    bulletin = published_bulletin(sergeant, precinct17)
    counters = [changes.reader_counter(officer.pk), changes.recipients_counter(bulletin.pk)]
    before = stamps.read(counters, ())[0].counters

    with redis_commands() as sent:
        assert reading.acknowledge(
            bulletin.pk, user=officer, version_number=1, now=timezone.now(),
            request=_ack_request(),
        )  # fmt: skip

    assert sent == ["EVALSHA"]
    after = cache.get_many(counters)
    assert after == {key: value + 1 for key, value in zip(counters, before, strict=True)}


@pytest.mark.parametrize(
    "case",
    ["already acknowledged", "not told", "not addressed", "advisory", "ended by the clock",
     "lifted", "not yet in force", "no such version", "version 0", "earlier version",
     "huge version"],
)  # fmt: skip
def test_acknowledging_at_once_writes_nothing_unless_every_check_passes(
    case, sergeant, officer, outsider, precinct17
):
    from tests.factories import UserFactory

    now = timezone.now()
    fields = {
        "advisory": {"kind": "advisory"},
        "ended by the clock": {"expires_at": now + timedelta(hours=1)},
        "not yet in force": {"effective_at": now + timedelta(hours=1)},
    }.get(case, {})
    bulletin = published_bulletin(sergeant, precinct17, now=now, **fields)
    person, version, at = officer, 1, now + timedelta(minutes=1)
    if case == "already acknowledged":
        reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=now)
    elif case == "not told":
        person = UserFactory(unit=precinct17)  # moved in after publication: no recipient row
    elif case == "not addressed":
        person = outsider
    elif case == "ended by the clock":
        at = now + timedelta(hours=2)  # status still says in force; the clock decides
    elif case == "lifted":
        authoring.lift_bulletin(bulletin, by=sergeant, now=now, reason="Threat over")
    elif case == "earlier version":
        authoring.amend_bulletin(
            bulletin, by=sergeant, now=now, reason="r", is_material=True, title="New"
        )
    version = {"no such version": 2, "version 0": 0, "huge version": 10**20}.get(case, version)
    receipts = Receipt.objects.filter(acknowledged_at__isnull=False).count()
    events = AuditEvent.objects.filter(action="bulletin.acknowledge").count()

    recorded = reading._acknowledge_at_once(  # the statement's own guard, before the checks
        bulletin.pk, user=person, version_number=version, now=at, request=_ack_request()
    )

    assert recorded is False
    assert Receipt.objects.filter(acknowledged_at__isnull=False).count() == receipts
    assert AuditEvent.objects.filter(action="bulletin.acknowledge").count() == events
    assert not Recipient.objects.filter(acknowledged_at__gt=now).exists()


def test_someone_told_after_publication_acknowledges_the_long_way(client, sergeant, precinct17):
    from tests.factories import UserFactory

    bulletin = published_bulletin(sergeant, precinct17)
    newcomer = UserFactory(unit=precinct17)
    client.force_login(newcomer)

    response = client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})

    assert response.status_code == HTTPStatus.FOUND
    assert Recipient.objects.get(user=newcomer, bulletin=bulletin).acknowledged_version == 1
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=newcomer).count() == 1

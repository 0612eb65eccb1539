import csv
import io
import json
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins import coverage, evidence
from bulletins.models import Recipient, Reminder
from bulletins.services import authoring, chasing, reading, tracking
from portal.models import AuditEvent
from tests.factories import UserFactory, approver, published_bulletin

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def test_coverage_figures_on_a_known_data_set(pairing):
    figures = tracking.coverage_summary(pairing)

    assert figures["audience"] == 6
    assert figures["opened"] == 5
    assert figures["acknowledged"] == 4
    assert figures["outstanding"] == 2
    # The admin issued it: acknowledged at publication, within the first 15 minutes.
    assert (figures["within_15"], figures["within_30"], figures["within_60"]) == (2, 3, 4)
    assert figures["percent"] == 67


def test_after_a_material_amendment_earlier_acknowledgements_are_counted_apart(
    pairing, admin, officer
):
    amended_at = pairing.t0 + 100 * MINUTE
    authoring.amend_bulletin(pairing, by=admin, now=amended_at, reason="Auxiliaries too",
                             is_material=True, title="All members paired",
                             approved_by=approver())  # agency-wide: approved again  # fmt: skip
    pairing.refresh_from_db()
    reading.acknowledge(pairing.pk, user=officer, version_number=2, now=amended_at + 10 * MINUTE)
    pairing.refresh_from_db()

    figures = tracking.coverage_summary(pairing)
    split = tracking.Coverage(pairing, Recipient.objects.filter(bulletin=pairing)).versions()

    # The admin made the change: acknowledged version 2 as it was published.
    assert figures["acknowledged"] == 2
    assert figures["earlier_version_only"] == 2
    assert figures["within_15"] == 2
    assert [(row["version"], row["people"]) for row in split] == [(2, 2), (1, 2), (None, 2)]


def test_acknowledgements_on_a_bucket_boundary_count_as_within_it(
    admin, agency, officer, auxiliary
):
    t0 = timezone.now() - timedelta(hours=2)
    order = published_bulletin(admin, agency, now=t0, priority=1)
    reading.acknowledge(order.pk, user=officer, version_number=1, now=t0 + 15 * MINUTE)
    late = t0 + 15 * MINUTE + timedelta(milliseconds=1)
    reading.acknowledge(order.pk, user=auxiliary, version_number=1, now=late)

    figures = tracking.coverage_summary(order)

    # With the admin, who issued it (acknowledged at publication).
    assert (figures["within_15"], figures["within_30"]) == (2, 3)


def test_timeline_is_cumulative_from_when_the_version_took_effect(pairing):
    now = pairing.t0 + 120 * MINUTE

    timeline = tracking.Coverage(
        pairing, Recipient.objects.filter(bulletin=pairing), now=now
    ).timeline()

    assert len(timeline) == tracking.TIMELINE_POINTS + 1
    assert timeline[0] == (0, 1)  # the admin, who issued it: acknowledged at publication
    assert timeline[-1] == (120, 4)
    counts = dict(timeline)
    assert (counts[10], counts[20], counts[50], counts[90]) == (2, 3, 4, 4)
    assert counts[5] == 1 and counts[45] == 3


def test_people_on_leave_are_counted_among_the_outstanding(pairing, outsider, officer):
    outsider.is_on_leave = officer.is_on_leave = True  # officer acknowledged: not counted
    outsider.save()
    officer.save()

    assert tracking.coverage_summary(pairing)["on_leave"] == 1


def test_coverage_figures_leave_the_list_to_its_own_page(client, pairing, admin, precinct17):
    client.force_login(admin)

    response = client.get(reverse("bulletins:coverage", args=[pairing.pk]))

    page = response.content.decode()
    listed = reverse("bulletins:outstanding", args=[pairing.pk])
    assert f'href="{listed}"' in page
    assert f'href="{listed}?unit={precinct17.pk}"' in page
    assert "Squad Officer" not in page
    assert "Squad Officer" in client.get(f"{listed}?unit={precinct17.pk}").content.decode()


def test_unit_breakdown_rolls_up_the_tree(pairing):
    rows = tracking.Coverage(pairing, Recipient.objects.filter(bulletin=pairing)).units()

    by_name = {row["unit"].name: (row["audience"], row["acknowledged"]) for row in rows}
    assert by_name["Metro Police Department"] == (6, 4)
    assert by_name["Manhattan South"] == (4, 3)
    assert by_name["17th Precinct"] == (4, 3)
    assert by_name["17th Precinct Anti-Crime"] == (1, 0)
    assert by_name["Brooklyn North"] == (1, 0)


def test_supervisor_sees_only_their_scope(client, pairing, sergeant):
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:coverage", args=[pairing.pk]))
    listed = client.get(reverse("bulletins:outstanding", args=[pairing.pk]))

    assert response.status_code == HTTPStatus.OK
    assert response.context["summary"]["audience"] == 4
    outstanding = [r.user.email for r in listed.context["page"].object_list]
    assert outstanding == ["squad@agency.test"]
    assert "Pat Outsider" not in listed.content.decode()


def test_supervisor_gets_404_for_a_bulletin_outside_their_scope(
    client, admin, precinct75, sergeant
):
    other = published_bulletin(admin, precinct75)
    client.force_login(sergeant)

    for name in ("coverage", "outstanding", "recipients_csv"):
        response = client.get(reverse(f"bulletins:{name}", args=[other.pk]))
        assert response.status_code == HTTPStatus.NOT_FOUND


def test_officers_cannot_see_coverage(client, pairing, officer):
    client.force_login(officer)

    assert client.get(reverse("bulletins:coverage", args=[pairing.pk])).status_code == 403
    assert client.get(reverse("bulletins:outstanding", args=[pairing.pk])).status_code == 403
    assert client.get(reverse("bulletins:overview")).status_code == 403
    assert client.get(reverse("bulletins:person", args=[officer.pk])).status_code == 403


def test_outstanding_list_filters_and_sorts(client, pairing, admin, precinct17):
    client.force_login(admin)
    url = reverse("bulletins:outstanding", args=[pairing.pk])

    everyone = client.get(url, {"sort": "name"}).context["page"].object_list
    never_opened = client.get(url, {"opened": "no"}).context["page"].object_list
    in_17th = client.get(url, {"unit": precinct17.pk}).context["page"].object_list

    assert [r.user.name for r in everyone] == ["Pat Outsider", "Squad Officer"]
    assert [r.user.email for r in never_opened] == ["squad@agency.test"]
    assert [r.user.email for r in in_17th] == ["squad@agency.test"]


def test_overview_lists_in_force_bulletins_least_covered_first(client, pairing, admin, agency):
    quiet = published_bulletin(admin, agency, priority=1, title="Nobody read this yet")
    client.force_login(admin)

    rows = client.get(reverse("bulletins:overview")).context["rows"]

    assert [row["bulletin"].pk for row in rows] == [quiet.pk, pairing.pk]
    assert rows[1]["percent"] == 67


def test_person_page_shows_every_order_and_the_chase(client, pairing, admin, outsider):
    client.force_login(admin)

    response = client.get(reverse("bulletins:person", args=[outsider.pk]))

    assert response.status_code == HTTPStatus.OK
    assert pairing.title in response.content.decode()
    assert "Outstanding" in response.content.decode()


def test_supervisor_gets_404_for_a_person_outside_their_scope(client, sergeant, outsider):
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:person", args=[outsider.pk]))

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_csv_export_streams_every_recipient_and_is_audited(client, pairing, admin, officer):
    client.force_login(admin)

    response = client.get(reverse("bulletins:recipients_csv", args=[pairing.pk]))

    assert response.status_code == HTTPStatus.OK
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(evidence.CSV_HEADER)
    assert len(rows) == 7
    mine = next(row for row in rows if row[1] == officer.email)
    assert mine[7] == "1"
    assert mine[8] == reading.ACKNOWLEDGEMENT_STATEMENT
    assert mine[9] == pairing.versions.get().content_hash
    assert mine[10] == "acknowledged"
    assert AuditEvent.objects.filter(action="export.recipients_csv", actor=admin).count() == 1


def test_evidence_record_is_signed_and_audited(client, pairing, admin, officer):
    client.force_login(admin)
    url = reverse("bulletins:evidence", args=[pairing.pk, officer.pk])

    page = client.get(url)
    download = client.get(url, {"format": "json"})

    assert page.status_code == HTTPStatus.OK
    assert officer.name in page.content.decode()
    signed = json.loads(download.content)
    assert evidence.verify(signed)
    version = signed["record"]["versions"][0]
    assert version["statement"] == reading.ACKNOWLEDGEMENT_STATEMENT
    assert version["content_hash_verified"] is True
    signed["record"]["versions"][0]["acknowledged_at"] = "never"
    assert not evidence.verify(signed)
    assert AuditEvent.objects.filter(action="export.evidence").count() == 2


def test_manual_reminder_needs_a_confirmation_and_is_rate_limited(client, pairing, admin):
    client.force_login(admin)
    url = reverse("bulletins:remind", args=[pairing.pk])

    confirm = client.get(url)
    first = client.post(url, follow=True)
    second = client.post(url, follow=True)

    assert "Send a reminder?" in confirm.content.decode()
    assert "Reminder sent to 2 people." in first.content.decode()
    assert "sent recently" in second.content.decode()


def _count_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    return len(captured)


def _grow(admin, agency, precinct17, precinct75, people, bulletins):
    members = UserFactory.create_batch(people // 2, unit=precinct17)
    UserFactory.create_batch(people // 2, unit=precinct75)
    now = timezone.now()
    orders = [published_bulletin(admin, agency, now=now - 5 * MINUTE) for _ in range(bulletins)]
    for member in members[: people // 4]:
        for order in orders:
            reading.acknowledge(order.pk, user=member, version_number=1, now=now)
    chasing.send_manual_reminder(orders[0], by=admin, now=now)
    return orders, members


def test_dashboards_run_the_same_few_queries_at_any_volume(
    client, admin, agency, precinct17, precinct75
):
    client.force_login(admin)
    client.get(reverse("bulletins:feed"))  # a session's first page notes the visit (issue 23)
    orders, members = _grow(admin, agency, precinct17, precinct75, people=10, bulletins=2)
    pages = {
        "coverage": reverse("bulletins:coverage", args=[orders[0].pk]),
        "outstanding": reverse("bulletins:outstanding", args=[orders[0].pk]),
        "overview": reverse("bulletins:overview"),
        "person": reverse("bulletins:person", args=[members[-1].pk]),
    }
    small = {name: _count_queries(client, url) for name, url in pages.items()}

    more, _ = _grow(admin, agency, precinct17, precinct75, people=120, bulletins=8)
    # Past the time changed figures are shown: the coverage page computes them again.
    with time_machine.travel(timezone.now() + timedelta(seconds=coverage.stale_seconds())):
        big = {name: _count_queries(client, url) for name, url in pages.items()}

    assert big == small
    assert small["coverage"] <= 16
    assert small["outstanding"] <= 16
    assert small["overview"] <= 12
    assert small["person"] <= 12


def test_unit_rows_escape_names_and_link_only_the_outstanding(agency):
    from bulletins.templatetags.bulletin_tags import unit_rows

    agency.name = "Harbor <Unit> & Co"
    rows = [
        {"unit": agency, "depth": 1, "audience": 5, "opened": 4, "acknowledged": 3,
         "outstanding": 2, "percent": 60},
        {"unit": agency, "depth": 2, "audience": 1, "opened": 1, "acknowledged": 1,
         "outstanding": 0, "percent": 100},
    ]  # fmt: skip

    html = str(unit_rows(rows, "/bulletins/9/outstanding"))

    assert "Harbor &lt;Unit&gt; &amp; Co" in html and "<Unit>" not in html
    assert html.count('href="/bulletins/9/outstanding?unit=') == 1
    assert "<td>3 (60%)</td>" in html and "<td>0</td>" in html


def test_the_recipient_table_is_analyzed_after_each_large_change():
    if connection.vendor != "postgresql":
        pytest.skip("autovacuum settings are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'bulletins_recipient'")
        options = dict(option.split("=") for option in cursor.fetchone()[0])

    assert options["autovacuum_analyze_scale_factor"] == "0"
    assert int(options["autovacuum_analyze_threshold"]) <= 36000 // 3
    assert int(options["autovacuum_vacuum_threshold"]) <= 36000


def test_acknowledgements_and_the_fan_out_write_no_index_a_composite_key_covers():
    """Receipts by person go through unique (user, version), recipients by unit only with
    their bulletin: no single-column index to write on every acknowledgement and fan-out row."""
    with connection.cursor() as cursor:
        indexed = {
            table: {
                tuple(index["columns"])
                for index in connection.introspection.get_constraints(cursor, table).values()
                if index["index"] or index["unique"]
            }
            for table in ("bulletins_receipt", "bulletins_recipient")
        }

    assert ("bulletin_id",) in indexed["bulletins_receipt"]  # single columns are seen
    assert ("user_id",) not in indexed["bulletins_receipt"]
    assert ("user_id", "version_id") in indexed["bulletins_receipt"]
    assert ("unit_id",) not in indexed["bulletins_recipient"]
    assert ("bulletin_id", "unit_id") in indexed["bulletins_recipient"]
    assert ("user_id", "bulletin_id") in indexed["bulletins_recipient"]


def test_both_forms_of_the_slot_agree_on_every_boundary(pairing):
    """width_bucket (PostgreSQL) and the CASE (SQLite, the embedded default) place each
    acknowledgement in the same slot, including one exactly on a limit."""
    acknowledged = Recipient.objects.filter(bulletin=pairing, acknowledged_at__isnull=False)
    times = sorted(acknowledged.values_list("acknowledged_at", flat=True))
    limits = [times[0] - MINUTE, times[1], times[2] + timedelta(microseconds=1), times[-1]]

    def slots(vendor):
        rows = acknowledged.annotate(s=tracking.slot("acknowledged_at", limits, vendor=vendor))
        return dict(rows.values_list("pk", "s"))

    expected = {
        row.pk: sum(limit < row.acknowledged_at for limit in limits) for row in acknowledged
    }
    assert slots("sqlite") == expected
    assert slots(connection.vendor) == expected
    assert sorted(expected.values()) == [1, 1, 2, 3]


def test_paging_by_unit_reads_the_same_people_in_the_same_order(
    admin, agency, precinct17, precinct75, squad17
):
    from django.core.paginator import Paginator

    for unit, names in ((precinct17, "CAB"), (squad17, "BBA"), (precinct75, "ZAYA")):
        for letter in names:
            UserFactory(unit=unit, name=f"{letter} Officer")
    order = published_bulletin(admin, agency)
    rows = tracking.outstanding_people(order, Recipient.objects.filter(bulletin=order), sort="unit")
    everyone = list(rows)

    for size in (1, 2, 3, 5, 50):
        paginator = Paginator(tracking.ByUnit(rows), size)
        paged = [r for n in paginator.page_range for r in paginator.page(n).object_list]
        assert [r.pk for r in paged] == [r.pk for r in everyone], size
        assert paginator.count == len(everyone)
    assert len({r.unit_id for r in everyone}) >= 3


def test_overview_shows_read_figures_for_bulletins_that_ask_only_to_be_read(
    client, pairing, admin, agency, officer
):
    """Issue 19, point 4: an Advisory nobody has opened is not "0 % acknowledged" and does not
    come first as least covered; it says how many have opened it."""
    advisory = published_bulletin(admin, agency, priority=1, kind="advisory", title="Road closed")
    reading.record_open(advisory, advisory.versions.get(), user=officer, now=timezone.now())
    quiet = published_bulletin(admin, agency, priority=1, title="Nobody read this yet")
    client.force_login(admin)

    response = client.get(reverse("bulletins:overview"))

    rows = response.context["rows"]
    assert [row["bulletin"].pk for row in rows] == [quiet.pk, pairing.pk, advisory.pk]
    read = rows[2]
    assert (read["asks_acknowledgement"], read["outstanding"]) == (False, None)
    assert (read["opened"], read["audience"], read["percent"]) == (1, 6, 17)
    page = response.content.decode()
    assert "Read: 1 of 6 have opened it" in page
    assert page.count("% acknowledged") == 2  # the two Orders only


def test_coverage_page_of_an_advisory_counts_who_read_it(client, admin, agency, officer):
    advisory = published_bulletin(admin, agency, kind="information", title="New radio codes")
    reading.record_open(advisory, advisory.versions.get(), user=officer, now=timezone.now())
    UserFactory.create_batch(2, unit=officer.unit)  # told later: not yet opened
    client.force_login(admin)

    response = client.get(reverse("bulletins:coverage", args=[advisory.pk]))
    listed = client.get(reverse("bulletins:outstanding", args=[advisory.pk]))

    page = response.content.decode()
    summary = response.context["summary"]
    assert (summary["opened"], summary["outstanding"], summary["percent"]) == (1, 1, 50)
    assert "Who has read it" in page and "Not yet opened" in page
    assert "Acknowledged within 15 minutes" not in page
    assert "Remind everyone outstanding" not in page
    assert [r.user_id for r in listed.context["page"].object_list] == [admin.pk]
    assert client.get(reverse("bulletins:remind", args=[advisory.pk])).status_code == 404


def test_people_attached_to_the_agency_are_a_row_of_their_own(client, pairing, admin):
    """Issue 19, point 7: the admin is attached to the agency itself; the rows add up."""
    coverage_ = tracking.Coverage(pairing, Recipient.objects.filter(bulletin=pairing))
    top, groups = tracking.group_breakdown(coverage_.units())
    client.force_login(admin)

    page = client.get(reverse("bulletins:coverage", args=[pairing.pk])).content.decode()

    assert top["audience"] == 6
    assert sum(group["row"]["audience"] for group in groups) == 6
    attached = groups[-1]
    assert attached.get("attached")
    assert (attached["row"]["audience"], attached["row"]["acknowledged"]) == (1, 1)
    assert "Attached to the agency" in page


def test_a_sergeant_sees_no_row_for_the_agency_outside_his_scope(pairing, sergeant):
    from bulletins import permissions

    rows = permissions.recipients_in_scope(sergeant, Recipient.objects.filter(bulletin=pairing))
    _, groups = tracking.group_breakdown(tracking.Coverage(pairing, rows).units())

    assert not any(group.get("attached") for group in groups)


def test_coverage_pages_put_the_time_span_on_its_own_line(client, pairing, admin):
    """Issue 19, point 17: no "· In force ..." left over after the state label."""
    client.force_login(admin)
    for name in ("bulletins:coverage", "bulletins:outstanding"):
        page = client.get(reverse(name, args=[pairing.pk])).content.decode()

        assert "&middot; In force" not in page and "· In force" not in page
        assert '<p class="bulletin-when">In force' in page


def test_a_sergeant_reminds_his_own_people_of_an_agency_order(client, pairing, sergeant):
    """Issue 19, point 5: the Remind button and the reminder for whoever follows the coverage;
    only the outstanding in the sergeant's scope are reminded."""
    client.force_login(sergeant)
    url = reverse("bulletins:remind", args=[pairing.pk])

    coverage_page = client.get(reverse("bulletins:coverage", args=[pairing.pk]))
    confirm = client.get(url)
    sent = client.post(url, follow=True)

    assert f'href="{url}"' in coverage_page.content.decode()
    assert confirm.status_code == HTTPStatus.OK
    assert "Reminder sent to 1 people." in sent.content.decode()
    assert set(
        Reminder.objects.filter(is_manual=True).values_list("recipient__user__email", flat=True)
    ) == {"squad@agency.test"}


def test_a_sergeant_outside_the_audience_cannot_remind(client, precinct75, sergeant, admin):
    order = published_bulletin(admin, precinct75, title="Brooklyn only")
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:remind", args=[order.pk]))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not Reminder.objects.exists()


def test_the_reminder_page_says_the_limit_before_sending_and_when_it_opens_again(
    client, pairing, admin
):
    """Issue 19, point 17: the limit is said before Send; while it holds, the button is
    disabled and the page says when the next reminder can go."""
    client.force_login(admin)
    url = reverse("bulletins:remind", args=[pairing.pk])
    sent_at = timezone.now().replace(microsecond=0)

    before = client.get(url).content.decode()
    chasing.send_manual_reminder(pairing, by=admin, now=sent_at)
    after = client.get(url).content.decode()

    assert "once every 15 minutes" in before
    assert "disabled" not in before
    opens = timezone.localtime(sent_at + 15 * MINUTE)
    assert (
        f'You can send the next reminder at <time datetime="{opens.isoformat()}">'
        f"{opens:%H:%M}</time>" in after
    )
    assert 'type="submit" class="button button-primary" disabled' in after

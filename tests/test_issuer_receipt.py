"""Who wrote an Order counts as having acknowledged it (issue 19, point 6): the issuer at
publication, whoever makes a material change for the new version; recorded as such (a receipt
that says so, the recipient row, an audit event), never chased, never "did not acknowledge".
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Receipt, Recipient, Reminder
from bulletins.services import authoring, chasing, reading
from portal.models import AuditEvent
from tests.factories import draft_bulletin, published_bulletin

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def _row(bulletin, person):
    return Recipient.objects.get(bulletin=bulletin, user=person)


def test_the_issuer_counts_as_acknowledged_at_publication_recorded_as_such(
    sergeant, officer, precinct17
):
    now = timezone.now()

    order = published_bulletin(sergeant, precinct17, now=now)

    row = _row(order, sergeant)
    assert (row.acknowledged_version, row.acknowledged_at, row.first_opened_at) == (1, now, now)
    receipt = Receipt.objects.get(bulletin=order, user=sergeant)
    assert receipt.version == order.versions.get()
    assert receipt.acknowledged_at == receipt.opened_at == now
    assert receipt.statement == reading.ISSUED_STATEMENT
    assert receipt.auth_method == reading.AS_AUTHOR
    assert receipt.content_hash == order.versions.get().content_hash
    event = AuditEvent.objects.get(action="bulletin.acknowledge", actor=sergeant)
    assert (event.object_id, event.object_version) == (str(order.pk), 1)
    assert event.detail["as_author"] is True
    assert _row(order, officer).acknowledged_version is None  # nobody else
    # Acknowledging again records nothing new.
    assert not reading.acknowledge(order.pk, user=sergeant, version_number=1, now=now + MINUTE)
    assert Receipt.objects.filter(bulletin=order, user=sergeant).count() == 1


def test_the_issuer_is_not_reminded_and_never_reads_that_he_did_not_acknowledge(
    client, sergeant, officer, precinct17
):
    start = timezone.now() - timedelta(hours=3)
    order = published_bulletin(sergeant, precinct17, now=start, priority=1)

    chasing.chase(start + 200 * MINUTE)
    authoring.lift_bulletin(order, by=sergeant, now=timezone.now(), reason="Threat over")
    client.force_login(sergeant)
    page = client.get(reverse("bulletins:detail", args=[order.pk])).content.decode()

    reminded = set(Reminder.objects.values_list("recipient__user_id", flat=True))
    assert officer.pk in reminded and sergeant.pk not in reminded
    assert _row(order, sergeant).obligation_at(timezone.now()) == "acknowledged"
    assert "You did not acknowledge this order before it ended" not in page


def test_an_issuer_outside_the_audience_is_not_told_and_has_no_receipt(admin, precinct17):
    order = published_bulletin(admin, precinct17)

    assert not Recipient.objects.filter(bulletin=order, user=admin).exists()
    assert not Receipt.objects.filter(bulletin=order, user=admin).exists()


def test_only_orders_are_acknowledged_by_their_issuer(sergeant, precinct17):
    advisory = published_bulletin(sergeant, precinct17, kind="advisory")

    assert _row(advisory, sergeant).acknowledged_version is None
    assert not Receipt.objects.filter(bulletin=advisory).exists()


def test_a_scheduled_order_counts_its_issuer_from_publication(sergeant, precinct17):
    now = timezone.now()
    order = published_bulletin(sergeant, precinct17, now=now, effective_at=now + 60 * MINUTE)

    assert order.status == "scheduled"
    assert _row(order, sergeant).acknowledged_version == 1


def test_whoever_makes_a_material_change_counts_for_the_new_version(
    admin, agency, sergeant, officer, precinct17
):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now)  # the admin is not in the audience
    reading.acknowledge(order.pk, user=officer, version_number=1, now=now + MINUTE)

    authoring.amend_bulletin(order, by=sergeant, now=now + 5 * MINUTE, reason="Pairs of three",
                             is_material=True, title="All officers in threes")  # fmt: skip
    order.refresh_from_db()

    assert order.ack_version == 2
    assert _row(order, sergeant).acknowledged_version == 2
    assert _row(order, officer).acknowledged_version == 1  # must acknowledge again
    receipt = Receipt.objects.get(bulletin=order, user=sergeant)
    assert receipt.version.number == 2
    assert receipt.statement == reading.AMENDED_STATEMENT


def test_a_correction_makes_no_new_receipt(sergeant, precinct17):
    now = timezone.now()
    order = published_bulletin(sergeant, precinct17, now=now)

    authoring.amend_bulletin(
        order,
        by=sergeant,
        now=now + MINUTE,
        reason="Typo",
        is_material=False,
        instruction="Work in pairs. No solo post.",
    )

    assert _row(order, sergeant).acknowledged_version == 1
    assert Receipt.objects.filter(bulletin=order, user=sergeant).count() == 1


def test_a_large_audience_told_after_commit_counts_its_issuer_at_publication(
    settings, sergeant, officer, precinct17
):
    settings.FAN_OUT_INLINE_LIMIT = 1
    published = timezone.now() - 2 * MINUTE
    order = authoring.publish_bulletin(
        draft_bulletin(sergeant, precinct17, now=published), by=sergeant, now=published
    )
    assert order.recipients.count() == 0
    assert not Receipt.objects.filter(bulletin=order).exists()

    authoring.write_recipients(order.pk, now=timezone.now())

    row = _row(order, sergeant)
    assert (row.acknowledged_version, row.acknowledged_at) == (1, published)
    assert Receipt.objects.get(bulletin=order, user=sergeant).statement == (
        reading.ISSUED_STATEMENT
    )
    assert _row(order, officer).acknowledged_version is None


def test_the_evidence_export_shows_the_issuer_acknowledged_as_issuer(
    client, admin, sergeant, precinct17
):
    order = published_bulletin(sergeant, precinct17)
    client.force_login(admin)

    response = client.get(reverse("bulletins:recipients_csv", args=[order.pk]))

    rows = b"".join(response.streaming_content).decode()
    mine = next(line for line in rows.splitlines() if sergeant.email in line)
    assert reading.ISSUED_STATEMENT in mine


def test_the_evidence_record_says_the_issuer_was_counted_not_that_he_signed(
    client, admin, sergeant, precinct17
):
    order = published_bulletin(sergeant, precinct17)
    client.force_login(admin)

    page = client.get(reverse("bulletins:evidence", args=[order.pk, sergeant.pk])).content.decode()

    assert "counted as acknowledged: issued this order" in page
    assert "signed in with as-author" not in page

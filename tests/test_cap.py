"""CAP 1.2 documents, the Atom feeds of CAP alerts, and their discovery links."""

from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from bulletins import cap
from bulletins.api import tokens
from bulletins.models import Bulletin
from bulletins.services import authoring
from portal.models import AuditEvent
from tests.factories import published_bulletin

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "cap1.2-strict.xsd")))
NS = {"cap": cap.NAMESPACE, "atom": "http://www.w3.org/2005/Atom"}


def valid_document(response):
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("application/cap+xml")
    document = etree.fromstring(response.content)
    SCHEMA.assertValid(document)
    return document


def text(document, path):
    return document.findtext(path, namespaces=NS)


def cap_url(bulletin, number):
    return reverse("bulletins:cap_alert", kwargs={"pk": bulletin.pk, "number": number})


def cancel_url(bulletin):
    return reverse("bulletins:cap_cancel", kwargs={"pk": bulletin.pk})


def amend(bulletin, by, *, now=None, **changes):
    return authoring.amend_bulletin(
        bulletin,
        by=by,
        now=now or timezone.now(),
        reason=changes.pop("reason", "Clarified"),
        is_material=changes.pop("is_material", True),
        **changes,
    )


@pytest.mark.parametrize("kind", Bulletin.Kind.values)
@pytest.mark.parametrize("priority", Bulletin.Priority.values)
def test_every_kind_and_priority_gives_a_valid_alert_update_and_cancel(
    client, sergeant, officer, precinct17, kind, priority
):
    bulletin = published_bulletin(sergeant, precinct17, kind=kind, priority=priority)
    amend(bulletin, sergeant, title="Pairs only, no solo posts")
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Threat passed")
    client.force_login(officer)

    alert = valid_document(client.get(cap_url(bulletin, 1)))
    update = valid_document(client.get(cap_url(bulletin, 2)))
    cancel = valid_document(client.get(cancel_url(bulletin)))

    assert [text(d, "cap:msgType") for d in (alert, update, cancel)] == [
        "Alert",
        "Update",
        "Cancel",
    ]
    urgency, severity, certainty = Bulletin.CAP_LEVELS[priority]
    assert text(alert, "cap:info/cap:urgency") == urgency
    assert text(alert, "cap:info/cap:severity") == severity
    assert text(alert, "cap:info/cap:certainty") == certainty
    assert text(alert, "cap:info/cap:responseType") == cap.RESPONSE_TYPES[kind]
    assert text(cancel, "cap:info/cap:responseType") == "AllClear"
    assert text(alert, "cap:info/cap:category") == "Security"


def test_an_alert_carries_the_bulletin_its_sender_audience_and_page(
    client, sergeant, officer, precinct17, squad17
):
    bulletin = published_bulletin(
        sergeant, [precinct17], kind="order", title="Vehicles checked for sabotage"
    )
    client.force_login(officer)

    alert = valid_document(client.get(cap_url(bulletin, 1)))

    assert text(alert, "cap:identifier") == cap.identifier(bulletin.pk, 1)
    assert " " not in text(alert, "cap:identifier")
    assert text(alert, "cap:sender") == cap.sender()
    assert text(alert, "cap:status") == "Actual"
    assert text(alert, "cap:scope") == "Restricted"
    assert text(alert, "cap:restriction")
    assert text(alert, "cap:references") is None
    assert text(alert, "cap:info/cap:headline") == "Vehicles checked for sabotage"
    assert text(alert, "cap:info/cap:instruction") == bulletin.instruction
    assert text(alert, "cap:info/cap:senderName") == "Metro Police Department"
    assert text(alert, "cap:info/cap:area/cap:areaDesc") == "17th Precinct (and below)"
    assert text(alert, "cap:info/cap:web").endswith(f"/bulletins/{bulletin.pk}/")
    assert text(alert, "cap:info/cap:expires") is None  # until further notice


def test_the_description_is_plain_text_not_markdown(client, sergeant, officer, precinct17):
    body = (
        "Effective immediately, **all** officers are _paired_.\n\n"
        "- Check vehicles before every tour\n"
        "- Report to the [desk](https://portal.example.org/desk) & wait\n"
    )
    bulletin = published_bulletin(sergeant, precinct17, body=body)
    client.force_login(officer)

    alert = valid_document(client.get(cap_url(bulletin, 1)))

    assert text(alert, "cap:info/cap:description") == (
        "Effective immediately, all officers are paired.\n\n"
        "- Check vehicles before every tour\n"
        "- Report to the desk (https://portal.example.org/desk) & wait"
    )


def test_sent_and_expires_have_an_explicit_offset_and_whole_seconds(
    client, sergeant, officer, precinct17
):
    now = timezone.now().replace(microsecond=123456)
    bulletin = published_bulletin(
        sergeant, precinct17, now=now, expires_at=now + timedelta(hours=36)
    )
    client.force_login(officer)

    alert = valid_document(client.get(cap_url(bulletin, 1)))

    sent = text(alert, "cap:sent")
    assert sent == timezone.localtime(now).replace(microsecond=0).isoformat()
    assert sent[-6] in "+-"
    expires = text(alert, "cap:info/cap:expires")
    assert expires == cap.cap_time(now + timedelta(hours=36))


def test_an_update_references_every_earlier_version(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    amend(bulletin, sergeant, title="Second")
    amend(
        bulletin,
        sergeant,
        expires_at=timezone.now() + timedelta(days=2),
        is_material=False,
        reason="Typo",
    )
    client.force_login(officer)
    first, second = (valid_document(client.get(cap_url(bulletin, n))) for n in (1, 2))

    third = valid_document(client.get(cap_url(bulletin, 3)))

    assert text(third, "cap:references").split() == [
        f"{text(d, 'cap:sender')},{text(d, 'cap:identifier')},{text(d, 'cap:sent')}"
        for d in (first, second)
    ]
    assert "Typo" in text(third, "cap:note")


def test_a_cancel_references_the_whole_thread(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    amend(bulletin, sergeant, title="Second")
    amend(bulletin, sergeant, title="Third")
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Suspect arrested")
    client.force_login(officer)
    thread = [valid_document(client.get(cap_url(bulletin, n))) for n in (1, 2, 3)]

    cancel = valid_document(client.get(cancel_url(bulletin)))

    assert text(cancel, "cap:references").split() == [
        f"{text(d, 'cap:sender')},{text(d, 'cap:identifier')},{text(d, 'cap:sent')}" for d in thread
    ]
    assert text(cancel, "cap:identifier") == cap.cancel_identifier(bulletin.pk)
    assert "Suspect arrested" in text(cancel, "cap:info/cap:description")
    assert text(cancel, "cap:info/cap:expires") is None


def test_there_is_no_cancel_while_in_force_or_after_a_plain_expiry(
    client, sergeant, officer, precinct17
):
    start = timezone.now() - timedelta(hours=2)
    expired = published_bulletin(
        sergeant, precinct17, now=start, expires_at=start + timedelta(hours=1)
    )
    in_force = published_bulletin(sergeant, precinct17)
    client.force_login(officer)

    assert client.get(cancel_url(expired)).status_code == HTTPStatus.NOT_FOUND
    assert client.get(cancel_url(in_force)).status_code == HTTPStatus.NOT_FOUND
    assert client.get(cap_url(in_force, 2)).status_code == HTTPStatus.NOT_FOUND


def test_an_exercise_bulletin_is_sent_with_status_exercise(sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    bulletin.is_exercise = True
    versions = list(bulletin.versions.all())

    document = etree.fromstring(
        cap.alert_document(bulletin, versions[0], versions, list(bulletin.audience.all()))
    )

    SCHEMA.assertValid(document)
    assert text(document, "cap:status") == "Exercise"


def test_cap_documents_follow_the_audience_rules(client, sergeant, officer, outsider, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    token, secret = tokens.issue_token(outsider, name="Display board", now=timezone.now())

    client.force_login(outsider)
    by_session = client.get(cap_url(bulletin, 1))
    client.logout()
    by_token = client.get(cap_url(bulletin, 1), headers={"authorization": f"Bearer {secret}"})
    anonymous = client.get(cap_url(bulletin, 1))

    assert by_session.status_code == HTTPStatus.NOT_FOUND
    assert by_token.status_code == HTTPStatus.NOT_FOUND
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    assert anonymous["WWW-Authenticate"].startswith("Bearer")


def test_a_token_reads_cap_documents_as_its_person(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    _, secret = tokens.issue_token(
        officer, name="Car laptop", is_read_only=True, now=timezone.now()
    )

    response = client.get(cap_url(bulletin, 1), headers={"authorization": f"Bearer {secret}"})

    assert response.status_code == HTTPStatus.OK
    document = valid_document(response)
    assert text(document, "cap:identifier").endswith(f"bulletin-{bulletin.pk}-v1")


def test_reading_an_intelligence_cap_document_is_audited(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, kind="intelligence")
    client.force_login(officer)

    document = valid_document(client.get(cap_url(bulletin, 1)))

    assert text(document, "cap:restriction") == cap.RESTRICTED
    event = AuditEvent.objects.get(action="bulletin.view_restricted", object_id=str(bulletin.pk))
    assert event.actor == officer
    assert event.detail == {"via": "cap"}


def atom_entries(response):
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = etree.fromstring(response.content)
    return {
        entry.findtext("atom:title", namespaces=NS): entry.find(
            "atom:link[@type='application/cap+xml']", namespaces=NS
        ).get("href")
        for entry in feed.findall("atom:entry", namespaces=NS)
    }


def test_my_feed_lists_the_alerts_in_force_for_me_each_linking_its_cap_document(
    client, sergeant, officer, precinct17, precinct75, admin
):
    mine = published_bulletin(sergeant, precinct17, title="Paired patrols")
    amend(mine, sergeant, title="Paired patrols, both shifts")
    published_bulletin(admin, precinct75, title="75th only")
    lifted = published_bulletin(sergeant, precinct17, title="Lifted already")
    authoring.lift_bulletin(lifted, by=sergeant, now=timezone.now(), reason="Over")
    client.force_login(officer)

    entries = atom_entries(client.get(reverse("bulletins:cap_feed")))

    assert list(entries) == ["Paired patrols, both shifts"]
    assert entries["Paired patrols, both shifts"].endswith(cap_url(mine, 2))


def test_my_feed_answers_a_token_and_refuses_a_revoked_one(client, sergeant, officer, precinct17):
    published_bulletin(sergeant, precinct17, title="Paired patrols")
    token, secret = tokens.issue_token(officer, name="Reader", now=timezone.now())
    url = reverse("bulletins:cap_feed")

    before = client.get(url, headers={"authorization": f"Bearer {secret}"})
    tokens.revoke_token(token, by=officer, now=timezone.now())
    after = client.get(url, headers={"authorization": f"Bearer {secret}"})

    assert list(atom_entries(before)) == ["Paired patrols"]
    assert after.status_code == HTTPStatus.UNAUTHORIZED


def test_a_unit_feed_lists_what_is_addressed_to_the_unit_or_above_it(
    client, sergeant, officer, agency, precinct17, squad17, precinct75, admin
):
    published_bulletin(admin, agency, title="Agency wide")
    published_bulletin(sergeant, precinct17, title="17th and below")
    published_bulletin(sergeant, precinct17, subtree=False, title="17th desk only")
    published_bulletin(admin, precinct75, title="75th only")
    client.force_login(sergeant)

    entries = atom_entries(client.get(reverse("bulletins:unit_cap_feed", args=[squad17.pk])))

    assert sorted(entries) == ["17th and below", "Agency wide"]


def test_a_unit_feed_shows_only_what_the_reader_may_see(client, sergeant, officer, precinct17):
    published_bulletin(sergeant, precinct17, title="Everyone")
    published_bulletin(sergeant, precinct17, title="Supervisors", supervisors_only=True)
    client.force_login(officer)

    entries = atom_entries(client.get(reverse("bulletins:unit_cap_feed", args=[precinct17.pk])))

    assert list(entries) == ["Everyone"]


@pytest.mark.parametrize(
    ("persona", "unit", "expected"),
    [
        ("officer", "precinct17", HTTPStatus.OK),
        ("officer", "agency", HTTPStatus.OK),
        ("officer", "squad17", HTTPStatus.NOT_FOUND),
        ("officer", "precinct75", HTTPStatus.NOT_FOUND),
        ("sergeant", "squad17", HTTPStatus.OK),
        ("sergeant", "precinct75", HTTPStatus.NOT_FOUND),
        ("outsider", "precinct17", HTTPStatus.NOT_FOUND),
        ("admin", "precinct75", HTTPStatus.OK),
    ],
)
def test_who_may_follow_a_unit_feed(request, client, squad17, persona, unit, expected):
    client.force_login(request.getfixturevalue(persona))

    response = client.get(
        reverse("bulletins:unit_cap_feed", args=[request.getfixturevalue(unit).pk])
    )

    assert response.status_code == expected


def test_pages_announce_their_cap_document_and_feed(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(officer)

    detail = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    feed = client.get(reverse("bulletins:feed")).content.decode()

    assert (
        f'<link rel="alternate" type="application/cap+xml" href="{cap_url(bulletin, 1)}"' in detail
    )
    assert (
        f'<link rel="alternate" type="application/atom+xml" href="{reverse("bulletins:cap_feed")}"'
        in feed
    )

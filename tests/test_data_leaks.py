"""Data that leaks or breaks (issue 18, points 10-14): formulas in CSV exports, control
characters, reading after a transfer, a draft in a URL, photo metadata and unaudited reads."""

import csv
import io
from html.parser import HTMLParser
from http import HTTPStatus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from lxml import etree
from PIL import ExifTags, Image

from bulletins.forms import BulletinForm
from bulletins.models import Bulletin, BulletinVersion, Receipt, Recipient
from bulletins.services import attachments, authoring
from portal import audit, people, roster
from portal.audit_views import CSV_COLUMNS
from portal.models import AuditEvent, Unit
from portal.spreadsheets import neutralise
from portal.validators import CONTROL_CHARACTER_MESSAGE
from tests.factories import UserFactory, draft_bulletin, make_unit, published_bulletin

pytestmark = pytest.mark.django_db

API = "/api/v1"
FORMULAS = ('=HYPERLINK("http://evil.test")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tx", "\rx")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def draft_form(units, **overrides):
    data = {
        "title": "All officers paired",
        "instruction": "Work in pairs.",
        "body": "Effective immediately.",
        "kind": "order",
        "priority": "1",
        "units": [unit.pk for unit in units],
        "to_sworn": "on",
        "to_auxiliary": "on",
        "to_civilian": "on",
        "starts": "now",
        "until_further_notice": "on",
        "review_hours": "72",
    }
    return data | overrides


def csv_rows(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# 10. CSV formula injection ------------------------------------------------------------------


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_that_would_run_as_a_formula_is_made_text(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["Maria Lopez", "4127", "", None, 3, "a=b", "O'Brien"])
def test_plain_cells_are_left_as_they_are(value):
    assert neutralise(value) == ("" if value is None else str(value))


def test_the_recipients_csv_neutralises_names_badges_and_unit_names(client, admin, agency):
    unit = make_unit("=cmd|' /C calc'!A0", parent=agency)
    UserFactory(name='=HYPERLINK("http://evil.test","Click")', badge="+4127", unit=unit)
    bulletin = published_bulletin(admin, agency)
    client.force_login(admin)

    rows = csv_rows(client.get(reverse("bulletins:recipients_csv", args=[bulletin.pk])))

    name, _, badge, unit_name = next(row for row in rows if "HYPERLINK" in row[0])[:4]
    assert name == '\'=HYPERLINK("http://evil.test","Click")'
    assert badge == "'+4127"
    assert unit_name == "'=cmd|' /C calc'!A0"


def test_the_audit_csv_uses_the_same_neutraliser(client, rf, admin, officer):
    request = rf.get("/", headers={"user-agent": "=1+2|cmd"})
    audit.record("bulletin.view_restricted", by=officer, request=request)
    client.force_login(admin)

    rows = csv_rows(client.get(reverse("audit:export")))

    agents = [row[CSV_COLUMNS.index("user_agent")] for row in rows]
    assert "'=1+2|cmd" in agents
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


# 11. Control characters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Paired\x0bpatrols"),
        ("title", "Two\nlines"),
        ("instruction", "Work in\x00pairs"),
        ("instruction", "Pairs\x85only"),
        ("body", "Details\x0bhere"),
        ("body", "Bell\x07"),
        ("body", "Escape \x1b[31m"),
    ],
)
def test_the_bulletin_form_refuses_control_characters(client, sergeant, precinct17, field, value):
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:create"), draft_form([precinct17], **{field: value}))

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert CONTROL_CHARACTER_MESSAGE in response.content.decode()
    assert not Bulletin.objects.exists()


def test_a_body_keeps_its_line_breaks_and_tabs(client, sergeant, precinct17):
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:create"),
        draft_form([precinct17], body="First line\r\nSecond\tline\n- a list"),
    )

    assert response.status_code == HTTPStatus.FOUND
    assert Bulletin.objects.get().body == "First line\r\nSecond\tline\n- a list"


@pytest.mark.parametrize("field", ["title", "instruction", "body", "reason"])
def test_an_amendment_with_a_control_character_changes_nothing(client, sergeant, precinct17, field):
    bulletin = published_bulletin(sergeant, precinct17)
    data = {
        "title": bulletin.title,
        "instruction": bulletin.instruction,
        "body": bulletin.body,
        "priority": str(bulletin.priority),
        "until_further_notice": "on",
        "is_material": "no",
        "reason": "Typo",
    }
    data[field] = "With a\x0bvertical tab"
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:amend", args=[bulletin.pk]), data)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert CONTROL_CHARACTER_MESSAGE in response.content.decode()
    assert BulletinVersion.objects.filter(bulletin=bulletin).count() == 1


def test_a_lift_reason_with_a_control_character_inside_is_refused(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:lift", args=[bulletin.pk]), {"when": "now", "reason": "Threat\x0bover"}
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert CONTROL_CHARACTER_MESSAGE in response.content.decode()
    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE


def api_post(client, url, payload):
    return client.post(url, payload, content_type="application/json")


def test_the_api_refuses_control_characters_with_a_field_error(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)
    draft = {
        "title": "Paired\x0bpatrols",
        "instruction": "Work in pairs.",
        "audience": [{"unit_id": precinct17.pk}],
        "until_further_notice": True,
    }

    created = api_post(client, f"{API}/bulletins", draft)
    amended = api_post(
        client,
        f"{API}/bulletins/{bulletin.pk}/amend",
        {"reason": "Typo\x0bfix", "is_material": False},
    )
    lifted = api_post(client, f"{API}/bulletins/{bulletin.pk}/lift", {"reason": "Threat\x1bover"})

    for response, field in ((created, "title"), (amended, "reason"), (lifted, "reason")):
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.content
        assert response.json()["field"] == field
        assert response.json()["errors"][0]["message"] == CONTROL_CHARACTER_MESSAGE
    assert Bulletin.objects.count() == 1
    bulletin.refresh_from_db()
    assert (bulletin.version, bulletin.status) == (1, Bulletin.Status.IN_FORCE)


@pytest.mark.parametrize(
    ("column", "row"),
    [
        ("name", "a@agency.test,Maria\x0bLopez,4127,Police Officer,sworn,{unit},officer"),
        ("badge", "a@agency.test,Maria Lopez,41\x0727,Police Officer,sworn,{unit},officer"),
        ("rank", "a@agency.test,Maria Lopez,4127,Police\x1bOfficer,sworn,{unit},officer"),
        ("unit_path", "a@agency.test,Maria Lopez,4127,Police Officer,sworn,Metro\x0bPD,officer"),
        ("unit_path", "a@agency.test,Maria Lopez,4127,Police Officer,sworn,{unit}\x85B,officer"),
    ],
)
def test_the_roster_refuses_control_characters_and_imports_nothing(column, row):
    lines = io.StringIO(
        "email,name,badge,rank,member_class,unit_path,role\n"
        + row.format(unit="Metro PD / 17th Pct x")
        + "\n",
        newline="",
    )

    with pytest.raises(roster.RosterError) as refused:
        roster.import_roster(lines)

    reasons = [error.reason for error in refused.value.errors]
    assert f"{column} holds an invisible control character" in reasons
    assert not Unit.objects.exists()


def test_a_stored_control_character_does_not_break_cap_or_the_feed(
    client, sergeant, officer, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    broken = "Paired\x0bpatrols\x1b\ufffe"
    Bulletin.objects.filter(pk=bulletin.pk).update(title=broken, instruction=broken)
    BulletinVersion.objects.filter(bulletin=bulletin).update(title=broken, body=broken)
    client.force_login(officer)

    alert = client.get(reverse("bulletins:cap_alert", kwargs={"pk": bulletin.pk, "number": 1}))
    feed = client.get(reverse("bulletins:cap_feed"))
    unit_feed = client.get(reverse("bulletins:unit_cap_feed", args=[precinct17.pk]))

    assert [alert.status_code, feed.status_code, unit_feed.status_code] == [HTTPStatus.OK] * 3
    headline = etree.fromstring(alert.content).findtext(
        "cap:info/cap:headline", namespaces={"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    )
    assert headline == "Paired patrols  "
    titles = etree.fromstring(feed.content).findall(
        "atom:entry/atom:title", namespaces={"atom": "http://www.w3.org/2005/Atom"}
    )
    assert [title.text for title in titles] == ["Paired patrols  "]
    etree.fromstring(unit_feed.content)


# 12. Visibility follows current membership --------------------------------------------------


@pytest.fixture
def other_agency(db):
    agency = make_unit("Nassau County Police", kind=Unit.Kind.AGENCY)
    return make_unit("1st Precinct", parent=agency)


def transfer(person, unit):
    person.unit = unit
    people.save_person(person, by=None, changed=["unit"])
    person.refresh_from_db()


def can_read(client, bulletin):
    return client.get(reverse("bulletins:detail", args=[bulletin.pk])).status_code


def test_a_person_moved_to_another_agency_no_longer_reads_the_first_agencys_bulletins(
    client, sergeant, officer, precinct17, other_agency
):
    order = published_bulletin(sergeant, precinct17, title="Paired patrols")
    ended = published_bulletin(sergeant, precinct17, title="Curfew patrols")
    authoring.lift_bulletin(ended, by=sergeant, now=timezone.now(), reason="Over")
    client.force_login(officer)
    assert can_read(client, order) == HTTPStatus.OK

    transfer(officer, other_agency)
    client.force_login(officer)

    assert can_read(client, order) == HTTPStatus.NOT_FOUND
    assert can_read(client, ended) == HTTPStatus.NOT_FOUND
    assert "Paired patrols" not in client.get(reverse("bulletins:feed")).content.decode()
    assert "Curfew patrols" not in client.get(reverse("bulletins:history")).content.decode()
    assert b"Paired patrols" not in client.get(reverse("bulletins:cap_feed")).content
    assert client.get(f"{API}/bulletins/{order.pk}").status_code == HTTPStatus.NOT_FOUND
    assert not order.is_addressed_to(officer)
    assert Recipient.objects.filter(bulletin=order, user=officer).exists()  # still evidence


def test_a_person_moved_to_another_agency_cannot_acknowledge_the_first_agencys_order(
    client, sergeant, officer, precinct17, other_agency
):
    order = published_bulletin(sergeant, precinct17, title="Paired patrols")
    transfer(officer, other_agency)
    client.force_login(officer)

    response = client.post(reverse("bulletins:acknowledge", args=[order.pk]), {"version": 1})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).exists()


def test_a_person_moved_within_the_agency_still_reads_what_they_were_told(
    client, sergeant, officer, precinct17, precinct75
):
    order = published_bulletin(sergeant, precinct17, title="Paired patrols")
    client.force_login(officer)
    client.get(reverse("bulletins:detail", args=[order.pk]))

    transfer(officer, precinct75)
    client.force_login(officer)

    assert can_read(client, order) == HTTPStatus.OK
    assert order.is_addressed_to(officer)


def test_a_restricted_bulletin_is_read_only_while_the_audience_rule_includes_the_person(
    client, sergeant, officer, precinct17, precinct75
):
    intelligence = published_bulletin(
        sergeant, precinct17, kind="intelligence", title="Threat against the 17th"
    )
    client.force_login(officer)
    assert can_read(client, intelligence) == HTTPStatus.OK

    transfer(officer, precinct75)
    client.force_login(officer)

    assert Recipient.objects.filter(bulletin=intelligence, user=officer).exists()
    assert can_read(client, intelligence) == HTTPStatus.NOT_FOUND
    assert not intelligence.is_addressed_to(officer)
    assert not Bulletin.objects.addressed_to(officer).filter(pk=intelligence.pk).exists()
    assert b"Threat" not in client.get(reverse("bulletins:cap_feed")).content
    transfer(officer, precinct17)
    assert intelligence.is_addressed_to(officer)


# 13. The audience count carries no draft -----------------------------------------------------


class _HtmxAttributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if any(name.startswith("hx-") for name in attributes):
            self.elements.append(attributes)


def test_the_form_asks_for_the_audience_count_by_post_with_the_audience_fields_only(
    client, sergeant
):
    client.force_login(sergeant)
    parser = _HtmxAttributes()

    parser.feed(client.get(reverse("bulletins:create")).content.decode())

    counting = [e for e in parser.elements if "hx-target" in e and "audience" in e["hx-target"]]
    assert len(counting) == 1
    attributes = counting[0]
    assert attributes["hx-post"] == reverse("bulletins:audience_count")
    assert "hx-get" not in attributes
    assert "hx-include" not in attributes
    sent = set(attributes["hx-params"].split(","))
    assert sent == set(BulletinForm.AUDIENCE_FIELDS)
    assert not sent & {"title", "instruction", "body", "csrfmiddlewaretoken"}
    assert not any("hx-get" in e for e in parser.elements)


def test_the_audience_count_answers_a_post_and_refuses_a_get(
    client, sergeant, officer, auxiliary, precinct17
):
    client.force_login(sergeant)
    url = reverse("bulletins:audience_count")

    counted = client.post(url, {"units": precinct17.pk, "to_sworn": "on"})
    leaky = client.get(url, {"units": precinct17.pk, "to_sworn": "on", "title": "Secret"})

    assert counted.status_code == HTTPStatus.OK
    assert "Reaches <strong>2</strong> people" in counted.content.decode()  # sergeant, officer
    assert leaky.status_code == HTTPStatus.METHOD_NOT_ALLOWED


# 14. Photo metadata and audited reads --------------------------------------------------------


def jpeg_with_gps():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Orientation] = 6  # taken sideways: turn 90 degrees to show
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (40.0, 44.0, 54.36),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (73.0, 59.0, 8.36),
    }
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), "navy").save(buffer, "JPEG", exif=exif, comment=b"home address")
    return buffer.getvalue()


def test_an_uploaded_photo_loses_its_exif_gps_and_comments(client, sergeant, officer, precinct17):
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    client.force_login(sergeant)
    client.post(
        reverse("bulletins:create"),
        draft_form(
            [precinct17],
            attachments=[SimpleUploadedFile("suspect.jpg", original, content_type="image/jpeg")],
        ),
    )
    bulletin = Bulletin.objects.get()
    attachment = bulletin.attachments.get()
    client.force_login(officer)
    authoring.publish_bulletin(bulletin, by=sergeant, now=timezone.now())

    response = client.get(reverse("bulletins:attachment", args=[bulletin.pk, attachment.pk]))

    stored = b"".join(response.streaming_content)
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG"
    assert dict(image.getexif()) == {}
    assert "exif" not in image.info and "comment" not in image.info
    assert b"PhoneMaker" not in stored and b"home address" not in stored
    assert image.size == (16, 32)  # turned as the camera meant
    assert attachment.size == len(stored)


def test_a_png_loses_its_text_chunks_and_keeps_its_transparency():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 40.7484 N, 73.9857 W")
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(buffer, "PNG", pnginfo=info)
    buffer.seek(0)

    cleaned = attachments.without_metadata(buffer, "image/png")

    image = Image.open(io.BytesIO(cleaned))
    assert b"40.7484" not in cleaned
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (255, 0, 0, 0)


def test_every_attachment_download_is_audited(client, sergeant, officer, precinct17):
    bulletin = draft_bulletin(sergeant, precinct17, kind="advisory")
    upload = SimpleUploadedFile("roster.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf")
    attachment = attachments.attach_files(
        bulletin, [upload], ["application/pdf"], by=sergeant, now=timezone.now()
    )[0]
    authoring.publish_bulletin(bulletin, by=sergeant, now=timezone.now())
    client.force_login(officer)

    response = client.get(reverse("bulletins:attachment", args=[bulletin.pk, attachment.pk]))

    assert response.status_code == HTTPStatus.OK
    event = AuditEvent.objects.get(action="attachment.download")
    assert (event.actor, event.object_id, event.object_version) == (officer, str(bulletin.pk), 1)
    assert event.detail == {"name": "roster.pdf"}


def test_the_atom_feeds_audit_their_intelligence_entries_like_a_page_view(
    client, sergeant, officer, precinct17
):
    intelligence = published_bulletin(sergeant, precinct17, kind="intelligence")
    published_bulletin(sergeant, precinct17, kind="order")
    client.force_login(officer)

    client.get(reverse("bulletins:cap_feed"))
    client.get(reverse("bulletins:unit_cap_feed", args=[precinct17.pk]))

    events = AuditEvent.objects.filter(action="bulletin.view_restricted").order_by("id")
    assert [(e.actor, e.object_id, e.object_version, e.detail) for e in events] == [
        (officer, str(intelligence.pk), 1, {"via": "atom"}),
        (officer, str(intelligence.pk), 1, {"via": "atom"}),
    ]

"""Writing, previewing, publishing, amending and lifting through the real views and forms."""

import io
import random
import re
import struct
import zlib
from datetime import date, timedelta
from html.parser import HTMLParser
from http import HTTPStatus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver, resolve, reverse
from django.utils import timezone
from PIL import Image

from bulletins.models import (
    Attachment,
    AudienceUnit,
    Bulletin,
    BulletinVersion,
    Recipient,
)
from bulletins.services import authoring
from portal.models import AuditEvent, User
from tests.factories import draft_bulletin, published_bulletin

pytestmark = pytest.mark.django_db

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
XSS_PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    '<a href="javascript:alert(1)">click</a>',
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def local(moment):
    """A datetime as the browser's datetime-local field sends it, in the agency time zone."""
    return timezone.localtime(moment).strftime(LOCAL_FORMAT)


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "navy").save(buffer, "PNG")
    return buffer.getvalue()


def pdf_upload(name="pairing-roster.pdf", content=PDF):
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def png_upload(name="suspect-vehicle.png", content=None):
    return SimpleUploadedFile(name, content or png_bytes(), content_type="image/png")


def bulletin_form(audience, **overrides):
    """The create form as a supervisor fills it in: an Order ending in 36 hours."""
    data = {
        "title": "All officers paired - no solo posts",
        "instruction": "Work in pairs. No solo posts.",
        "body": "Effective immediately, **all** officers are paired.",
        "kind": "order",
        "priority": "1",
        "units": [unit.pk for unit in audience],
        "units_only": [],
        "to_sworn": "on",
        "to_auxiliary": "on",
        "to_civilian": "on",
        "starts": "now",
        "effective_at": "",
        "expires_at": local(timezone.now() + timedelta(hours=36)),
        "review_hours": "72",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def amend_form(bulletin, **overrides):
    data = {
        "title": bulletin.title,
        "instruction": bulletin.instruction,
        "body": bulletin.body,
        "priority": str(bulletin.priority),
        "expires_at": local(bulletin.expires_at) if bulletin.expires_at else "",
        "until_further_notice": "on" if bulletin.expires_at is None else "",
        "is_material": "yes",
        "reason": "Pairing now applies to auxiliaries too.",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def row_counts():
    models = (Bulletin, BulletinVersion, AudienceUnit, Attachment, Recipient, AuditEvent)
    return {model.__name__: model.objects.count() for model in models}


def text_of(response):
    """The page as a reader sees it: tags removed, whitespace collapsed."""
    html = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.split())


# -- Navigation and labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "shown"), [("sergeant", True), ("admin", True), ("officer", False)]
)
def test_new_bulletin_link_is_in_the_navigation_for_authors_only(request, client, persona, shown):
    client.force_login(request.getfixturevalue(persona))

    page = client.get(reverse("bulletins:feed")).content.decode()

    link = f'<a href="{reverse("bulletins:create")}"'
    assert (link in page and "New bulletin</a>" in page) is shown


def test_new_bulletin_form_has_the_labels_authors_and_checks_rely_on(
    client, settings, sergeant, precinct17, squad17, precinct75
):
    settings.APPROVAL_REQUIRED_FOR = "none"  # else any unit of his agency, for approval
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:create"))

    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    for label in ("Title", "Instructions", "Body", "Kind", "Priority", "Ends at (New York time)"):
        assert f">{label}</label>" in page
    assert "Until further notice</label>" in page
    assert f"{precinct17.name}</label>" in page
    assert f"{squad17.name}</label>" in page
    assert precinct75.name not in page
    assert ">Preview</button>" in page


def test_amend_and_lift_pages_have_reason_and_their_buttons(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    detail = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    amend = client.get(reverse("bulletins:amend", args=[bulletin.pk])).content.decode()
    lift = client.get(reverse("bulletins:lift", args=[bulletin.pk])).content.decode()

    assert ">Amend</a>" in detail
    assert ">Lift</a>" in detail
    assert ">Reason</label>" in amend
    assert ">Amend</button>" in amend
    assert ">Reason</label>" in lift
    assert ">Lift</button>" in lift


# -- The form flow ---------------------------------------------------------------------------


def test_create_saves_a_draft_and_redirects_to_its_preview(client, sergeant, precinct17, squad17):
    client.force_login(sergeant)
    ends = timezone.localtime().replace(second=0, microsecond=0) + timedelta(hours=36)

    response = client.post(
        reverse("bulletins:create"),
        bulletin_form(
            [precinct17], units_only=[squad17.pk], expires_at=ends.strftime(LOCAL_FORMAT)
        ),
    )

    bulletin = Bulletin.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("bulletins:preview", args=[bulletin.pk])
    assert bulletin.status == Bulletin.Status.DRAFT
    assert bulletin.issued_by == sergeant
    assert bulletin.expires_at == ends
    assert bulletin.effective_at is None
    assert sorted(bulletin.audience_targets(), key=lambda t: t[0].pk) == [
        (precinct17, True),
        (squad17, False),
    ]
    assert not Recipient.objects.exists()


def test_datetime_local_values_are_read_in_the_agency_time_zone(client, sergeant, precinct17):
    client.force_login(sergeant)
    tomorrow = timezone.localdate() + timedelta(days=1)

    client.post(
        reverse("bulletins:create"),
        bulletin_form(
            [precinct17],
            starts="at",
            effective_at=f"{tomorrow:%Y-%m-%d}T06:00",
            expires_at="",
            until_further_notice="on",
            review_hours="12",
        ),
    )

    bulletin = Bulletin.objects.get()
    starts = timezone.localtime(bulletin.effective_at)
    assert str(starts.tzinfo) == "America/New_York"
    assert (starts.date(), starts.hour, starts.minute) == (tomorrow, 6, 0)
    assert bulletin.expires_at is None
    assert bulletin.review_interval == timedelta(hours=12)


def test_preview_shows_the_reach_and_the_bulletin_as_officers_will_see_it(
    client, sergeant, officer, auxiliary, outsider, precinct17
):
    client.force_login(sergeant)
    client.post(reverse("bulletins:create"), bulletin_form([precinct17]))
    bulletin = Bulletin.objects.get()

    preview = client.get(reverse("bulletins:preview", args=[bulletin.pk]))
    client.post(reverse("bulletins:publish", args=[bulletin.pk]))
    client.force_login(officer)
    detail = client.get(reverse("bulletins:detail", args=[bulletin.pk]))

    assert preview.status_code == HTTPStatus.OK
    assert "Reaches 3 people" in text_of(preview)
    assert "Acknowledge</button>" in preview.content.decode()
    assert ">Publish</button>" in preview.content.decode()
    for part in (
        r"<h1>.*?</h1>",
        r'<section class="instruction".*?</section>',
        r'<section class="bulletin-body">.*?</section>',
    ):
        shown = re.search(part, preview.content.decode(), re.DOTALL).group()
        assert shown in detail.content.decode()
    assert "<strong>all</strong>" in detail.content.decode()


def test_publish_from_the_preview_puts_it_in_force_for_the_audience(
    client, sergeant, officer, auxiliary, outsider, precinct17
):
    client.force_login(sergeant)
    client.post(reverse("bulletins:create"), bulletin_form([precinct17]))
    bulletin = Bulletin.objects.get()

    response = client.post(reverse("bulletins:publish", args=[bulletin.pk]))

    bulletin.refresh_from_db()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("bulletins:detail", args=[bulletin.pk])
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert bulletin.version == 1
    told = set(Recipient.objects.filter(bulletin=bulletin).values_list("user__email", flat=True))
    assert told == {officer.email, auxiliary.email, sergeant.email}
    client.force_login(officer)
    feed = client.get(reverse("bulletins:feed"))
    assert bulletin.title in feed.content.decode()


def test_scheduled_bulletin_published_from_the_form_waits_for_its_time(
    client, sergeant, officer, precinct17
):
    client.force_login(sergeant)
    starts = timezone.now() + timedelta(hours=2)
    client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], starts="at", effective_at=local(starts)),
    )
    bulletin = Bulletin.objects.get()

    client.post(reverse("bulletins:publish", args=[bulletin.pk]))

    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.SCHEDULED
    client.force_login(officer)
    assert bulletin.title not in client.get(reverse("bulletins:feed")).content.decode()


def test_editing_a_draft_changes_it_and_returns_to_the_preview(
    client, sergeant, precinct17, squad17
):
    draft = draft_bulletin(sergeant, precinct17, expires_at=timezone.now() + timedelta(hours=12))
    client.force_login(sergeant)
    form = client.get(reverse("bulletins:edit", args=[draft.pk]))
    assert f'value="{local(draft.expires_at)}"' in form.content.decode()

    response = client.post(
        reverse("bulletins:edit", args=[draft.pk]),
        bulletin_form([squad17], title="Paired patrols - Anti-Crime only"),
    )

    draft.refresh_from_db()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("bulletins:preview", args=[draft.pk])
    assert Bulletin.objects.count() == 1
    assert draft.title == "Paired patrols - Anti-Crime only"
    assert draft.status == Bulletin.Status.DRAFT
    assert draft.audience_targets() == [(squad17, True)]


def test_editing_a_published_bulletin_sends_the_author_to_amend_instead(
    client, sergeant, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:edit", args=[bulletin.pk]), bulletin_form([precinct17], title="Changed")
    )

    bulletin.refresh_from_db()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("bulletins:detail", args=[bulletin.pk])
    assert bulletin.title != "Changed"


def test_material_amendment_through_the_form_makes_a_version_to_acknowledge_again(
    client, sergeant, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:amend", args=[bulletin.pk]),
        amend_form(bulletin, instruction="Work in pairs. Auxiliaries stay in the station house."),
    )

    bulletin.refresh_from_db()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("bulletins:detail", args=[bulletin.pk])
    assert (bulletin.version, bulletin.ack_version) == (2, 2)
    latest = bulletin.versions.get(number=2)
    assert latest.is_material
    assert latest.reason == "Pairing now applies to auxiliaries too."
    assert latest.instruction == "Work in pairs. Auxiliaries stay in the station house."


def test_non_material_amendment_through_the_form_extends_the_end_and_keeps_acknowledgements(
    client, sergeant, precinct17
):
    bulletin = published_bulletin(
        sergeant, precinct17, expires_at=timezone.now() + timedelta(hours=36)
    )
    new_end = timezone.localtime().replace(second=0, microsecond=0) + timedelta(hours=72)
    client.force_login(sergeant)

    client.post(
        reverse("bulletins:amend", args=[bulletin.pk]),
        amend_form(
            bulletin,
            expires_at=new_end.strftime(LOCAL_FORMAT),
            is_material="no",
            reason="Extended by 36 h",
        ),
    )

    bulletin.refresh_from_db()
    assert (bulletin.version, bulletin.ack_version) == (2, 1)
    assert bulletin.expires_at == new_end
    assert bulletin.versions.get(number=2).reason == "Extended by 36 h"


def test_lift_with_a_reason_ends_it_and_officers_see_why(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:lift", args=[bulletin.pk]), {"reason": "Suspect in custody"}
    )

    bulletin.refresh_from_db()
    assert response.status_code == HTTPStatus.FOUND
    assert bulletin.status == Bulletin.Status.LIFTED
    assert bulletin.lift_reason == "Suspect in custody"
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[bulletin.pk]))
    assert "Lifted" in text_of(page)
    assert "Suspect in custody" in text_of(page)
    assert bulletin.title not in client.get(reverse("bulletins:feed")).content.decode()


# -- Bad input: a field error, status 422, nothing saved ---------------------------------------


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width, height):
    """A PNG header for a huge image (a decompression bomb) with no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")


def _png_with_short_header():
    """A PNG whose header chunk is cut short (Pillow raises ValueError, not OSError)."""
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", b"\x00\x00\x00\x08") + _png_chunk(b"IEND", b"")
    )


BAD_CREATE_INPUT = {
    "end before start": (
        lambda now, units, outside: {"expires_at": local(now - timedelta(hours=1))},
        "The end must be after the bulletin takes effect.",
    ),
    "scheduled end before its start": (
        lambda now, units, outside: {
            "starts": "at",
            "effective_at": local(now + timedelta(hours=5)),
            "expires_at": local(now + timedelta(hours=4)),
        },
        "The end must be after the bulletin takes effect.",
    ),
    "scheduled time in the past": (
        lambda now, units, outside: {
            "starts": "at",
            "effective_at": local(now - timedelta(hours=1)),
        },
        "A scheduled time must be in the future.",
    ),
    "scheduled without a time": (
        lambda now, units, outside: {"starts": "at", "effective_at": ""},
        "Give the time it takes effect.",
    ),
    "empty audience": (
        lambda now, units, outside: {"units": []},
        "Choose at least one unit.",
    ),
    "no member class": (
        lambda now, units, outside: {"to_sworn": None, "to_auxiliary": None, "to_civilian": None},
        "Choose at least one member class.",
    ),
    "unit outside the supervisor's scope": (
        lambda now, units, outside: {"units": [outside.pk]},
        "Select a valid choice",
    ),
    "unit outside the scope, on its own": (
        lambda now, units, outside: {"units": [], "units_only": [outside.pk]},
        "Select a valid choice",
    ),
    "no end and not until further notice": (
        lambda now, units, outside: {"expires_at": ""},
        "Give an end time, or tick Until further notice.",
    ),
    "missing title": (
        lambda now, units, outside: {"title": ""},
        "This field is required.",
    ),
    "oversized attachment": (
        lambda now, units, outside: {
            "attachments": [pdf_upload("big.pdf", PDF + b"0" * Attachment.MAX_BYTES)]
        },
        "big.pdf is larger than 10 MB.",
    ),
    "html named .pdf": (
        lambda now, units, outside: {
            "attachments": [pdf_upload("orders.pdf", b"<html><script>alert(1)</script></html>")]
        },
        "orders.pdf is not a PDF, JPEG or PNG file.",
    ),
    "random bytes named .png": (
        lambda now, units, outside: {
            "attachments": [png_upload("photo.png", random.Random(7).randbytes(4096))]
        },
        "photo.png is not a PDF, JPEG or PNG file.",
    ),
    "png decompression bomb": (
        lambda now, units, outside: {
            "attachments": [png_upload("bomb.png", _png_claiming(10**5, 10**5))]
        },
        "bomb.png is not a readable image.",
    ),
    "png with a short header": (
        lambda now, units, outside: {
            "attachments": [png_upload("short.png", _png_with_short_header())]
        },
        "short.png is not a readable image.",
    ),
    "six attachments": (
        lambda now, units, outside: {
            "attachments": [pdf_upload(f"page-{n}.pdf") for n in range(6)]
        },
        "A bulletin can have 5 attachments at most.",
    ),
}


@pytest.mark.parametrize("case", BAD_CREATE_INPUT)
def test_bad_bulletin_input_is_a_field_error_and_saves_nothing(
    client, settings, sergeant, officer, precinct17, precinct75, case
):
    settings.APPROVAL_REQUIRED_FOR = "none"  # beyond his command: see test_approval
    published_bulletin(sergeant, precinct17, title="Already in force")
    client.force_login(sergeant)
    change, message = BAD_CREATE_INPUT[case]
    data = bulletin_form([precinct17], **change(timezone.now(), [precinct17], precinct75))
    before = row_counts()

    response = client.post(reverse("bulletins:create"), data)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert message in response.content.decode()
    assert 'class="errorlist' in response.content.decode()
    assert row_counts() == before


def test_bad_input_on_a_draft_edit_changes_nothing(
    client, settings, sergeant, precinct17, precinct75
):
    settings.APPROVAL_REQUIRED_FOR = "none"  # beyond his command: see test_approval
    draft = draft_bulletin(sergeant, precinct17, title="Original title")
    client.force_login(sergeant)
    before = row_counts()

    response = client.post(
        reverse("bulletins:edit", args=[draft.pk]),
        bulletin_form([precinct75], title="Tampered title"),
    )

    draft.refresh_from_db()
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Select a valid choice" in response.content.decode()
    assert draft.title == "Original title"
    assert draft.audience_targets() == [(precinct17, True)]
    assert row_counts() == before


def test_attachments_beyond_five_on_a_draft_are_refused(client, sergeant, precinct17):
    client.force_login(sergeant)
    client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], attachments=[pdf_upload(f"page-{n}.pdf") for n in range(4)]),
    )
    draft = Bulletin.objects.get()
    before = row_counts()

    response = client.post(
        reverse("bulletins:edit", args=[draft.pk]),
        bulletin_form([precinct17], attachments=[pdf_upload("five.pdf"), pdf_upload("six.pdf")]),
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "A bulletin can have 5 attachments at most." in response.content.decode()
    assert row_counts() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": ""}, "This field is required."),
        ({"reason": "   "}, "This field is required."),
        ({"reason": None}, "This field is required."),
        ({"is_material": None}, "This field is required."),
        (
            {"until_further_notice": "", "expires_at": ""},
            "Give an end time, or tick Until further notice.",
        ),
        (
            {"until_further_notice": "", "expires_at": "2001-01-01T00:00"},
            "The end must be in the future.",
        ),
        ({"priority": "9"}, "Select a valid choice"),
    ],
    ids=[
        "empty reason",
        "blank reason",
        "no reason",
        "no kind of change",
        "no end",
        "end in the past",
        "bad priority",
    ],
)
def test_bad_amendment_is_a_field_error_and_saves_nothing(
    client, sergeant, precinct17, change, message
):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)
    before = row_counts()

    response = client.post(
        reverse("bulletins:amend", args=[bulletin.pk]), amend_form(bulletin, **change)
    )

    bulletin.refresh_from_db()
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert message in response.content.decode()
    assert bulletin.version == 1
    assert row_counts() == before


@pytest.mark.parametrize(
    "data", [{"reason": ""}, {"reason": "  \n "}, {}], ids=["empty", "blank", "absent"]
)
def test_lift_without_a_reason_is_a_field_error_and_saves_nothing(
    client, sergeant, precinct17, data
):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)
    before = row_counts()

    response = client.post(reverse("bulletins:lift", args=[bulletin.pk]), data)

    bulletin.refresh_from_db()
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "This field is required." in response.content.decode()
    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert row_counts() == before


def test_lifting_an_ended_bulletin_is_a_form_error(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Over")
    client.force_login(sergeant)
    before = row_counts()

    response = client.post(reverse("bulletins:lift", args=[bulletin.pk]), {"reason": "Again"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "This bulletin is no longer in force." in response.content.decode()
    assert row_counts() == before


@pytest.mark.parametrize("version", ["abc", "", "1.5", "1e3"])
def test_non_numeric_version_on_acknowledge_is_refused_and_saves_nothing(
    client, sergeant, officer, precinct17, version
):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(officer)
    client.get(reverse("bulletins:detail", args=[bulletin.pk]))
    before = row_counts()

    response = client.post(
        reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": version}
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "The version to acknowledge must be a number." in response.content.decode()
    assert not Recipient.objects.filter(user=officer, acknowledged_at__isnull=False).exists()
    assert row_counts() == before


def _dst_gap():
    """A local time that does not exist in New York: 02:30 on the spring-forward Sunday."""
    year = timezone.localdate().year + 1
    march = [date(year, 3, day) for day in range(1, 32)]
    second_sunday = [day for day in march if day.weekday() == 6][1]
    return f"{second_sunday:%Y-%m-%d}T02:30"


HOSTILE_FORMS = {
    "nul byte in title": {"title": "Pair\x00up"},
    "title too long": {"title": "x" * 5000},
    "unit id not a number": {"units": ["seventeen"]},
    "unit id too big": {"units": ["99999999999999999999999"]},
    "unknown kind": {"kind": "rumour"},
    "priority not a number": {"priority": "urgent"},
    "garbage time": {"expires_at": "tomorrow-ish"},
    "time that does not exist": {"starts": "at", "effective_at": _dst_gap()},
    "year ten thousand": {"expires_at": "10000-01-01T00:00"},
    "review hours huge": {"review_hours": "99999999999999999999"},
    "review hours zero": {"review_hours": "0"},
    "unknown start": {"starts": "yesterday"},
    "truncated png header": {"attachments": [png_upload("cut.png", png_bytes()[:20])]},
    "empty file": {"attachments": [pdf_upload("empty.pdf", b"")]},
}


@pytest.mark.parametrize("case", HOSTILE_FORMS)
def test_hostile_form_input_never_answers_500(client, sergeant, precinct17, case):
    client.force_login(sergeant)
    before = row_counts()

    response = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], **HOSTILE_FORMS[case])
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert 'class="errorlist' in response.content.decode()
    assert row_counts() == before


def test_hostile_query_strings_never_answer_500(client, sergeant, officer, precinct17):
    published_bulletin(sergeant, precinct17, title="Pair up")
    client.force_login(sergeant)

    responses = [
        client.get(
            reverse("bulletins:history"), {"q": "pair & | ! ( \x00", "kind": "x", "state": "y"}
        ),
        client.get(reverse("bulletins:history"), {"q": "'\"); DROP TABLE bulletins; --"}),
        client.post(reverse("bulletins:audience_count"), {"units": ["x", "-1"], "starts": "at"}),
        client.get(reverse("bulletins:feed_items"), {"etag": "\x00" * 50}),
    ]

    assert [r.status_code for r in responses] == [HTTPStatus.OK] * 4


# -- Attachments -----------------------------------------------------------------------------


def test_pdf_and_png_on_a_draft_are_shown_and_downloadable_by_the_audience_only(
    client, sergeant, officer, outsider, precinct17
):
    client.force_login(sergeant)
    client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], attachments=[pdf_upload(), png_upload()]),
    )
    bulletin = Bulletin.objects.get()
    client.post(reverse("bulletins:publish", args=[bulletin.pk]))
    pdf, png = bulletin.attachments.order_by("name")
    client.force_login(officer)

    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()
    pdf_response = client.get(reverse("bulletins:attachment", args=[bulletin.pk, pdf.pk]))
    png_response = client.get(reverse("bulletins:attachment", args=[bulletin.pk, png.pk]))
    client.force_login(outsider)
    refused = client.get(reverse("bulletins:attachment", args=[bulletin.pk, pdf.pk]))

    assert "pairing-roster.pdf</a>" in page
    assert "suspect-vehicle.png</a>" in page
    assert reverse("bulletins:attachment", args=[bulletin.pk, png.pk]) in page
    assert pdf_response.status_code == HTTPStatus.OK
    assert pdf_response["Content-Type"] == "application/pdf"
    assert pdf_response["Content-Disposition"] == 'attachment; filename="pairing-roster.pdf"'
    assert b"".join(pdf_response.streaming_content) == PDF
    assert png_response["Content-Type"] == "image/png"
    assert png_response["Content-Disposition"] == 'attachment; filename="suspect-vehicle.png"'
    assert b"".join(png_response.streaming_content) == png_bytes()
    assert refused.status_code == HTTPStatus.NOT_FOUND


def test_attachment_of_another_bulletin_is_not_found_through_mine(
    client, sergeant, officer, precinct17, precinct75, admin
):
    mine = published_bulletin(sergeant, precinct17)
    theirs = draft_bulletin(admin, precinct75)
    client.force_login(admin)
    client.post(
        reverse("bulletins:edit", args=[theirs.pk]),
        bulletin_form([precinct75], attachments=[pdf_upload()]),
    )
    attachment = theirs.attachments.get()
    client.force_login(officer)

    response = client.get(reverse("bulletins:attachment", args=[mine.pk, attachment.pk]))

    assert response.status_code == HTTPStatus.NOT_FOUND


# -- XSS -------------------------------------------------------------------------------------


class _ActiveContent(HTMLParser):
    """Collects what a browser would execute: script text, on* handlers, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "alert" in data:
            self.found.append(f"<script>{data}")


def active_content(response):
    parser = _ActiveContent()
    parser.feed(response.content.decode())
    return parser.found


def test_script_in_title_instruction_and_body_never_reaches_a_page_unescaped(
    client, sergeant, officer, precinct17
):
    payload = " ".join(XSS_PAYLOADS)
    client.force_login(sergeant)
    client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], title=payload[:200], instruction=payload, body=payload),
    )
    bulletin = Bulletin.objects.get()
    preview = client.get(reverse("bulletins:preview", args=[bulletin.pk]))
    client.post(reverse("bulletins:publish", args=[bulletin.pk]))
    client.post(
        reverse("bulletins:amend", args=[bulletin.pk]), amend_form(bulletin, reason=payload)
    )
    client.force_login(officer)
    feed = client.get(reverse("bulletins:feed"))
    detail = client.get(reverse("bulletins:detail", args=[bulletin.pk]))
    client.force_login(sergeant)
    client.post(reverse("bulletins:lift", args=[bulletin.pk]), {"reason": payload})
    client.force_login(officer)

    history = client.get(reverse("bulletins:history"))
    lifted = client.get(reverse("bulletins:detail", args=[bulletin.pk]))

    pages = {
        "preview": preview,
        "feed": feed,
        "detail": detail,
        "history": history,
        "lifted": lifted,
    }
    for name, page in pages.items():
        html = page.content.decode()
        assert page.status_code == HTTPStatus.OK, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, name
        assert "<script>alert" not in html, name
        assert "<img src=x" not in html, name
        assert '<a href="javascript:' not in html, name
        assert active_content(page) == [], name


# -- Query counts ----------------------------------------------------------------------------


@pytest.fixture
def precinct_of_200(precinct17, agency):
    """The 17th Precinct with 200 more members: every bulletin has 200+ recipients."""
    User.objects.bulk_create(
        User(
            email=f"patrol{n}@agency.test",
            name=f"Patrol Officer {n}",
            badge=f"P{n}",
            unit=precinct17,
            agency=agency,
        )
        for n in range(200)
    )
    return precinct17


def _publish_many(by, unit, count, *, start=0, **fields):
    return [
        published_bulletin(by, unit, title=f"Order {start + n}", priority=1 + n % 3, **fields)
        for n in range(count)
    ]


def queries_for(call):
    with CaptureQueriesContext(connection) as context:
        response = call()
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
    return len(context.captured_queries)


def test_feed_query_count_does_not_grow_with_bulletins_in_force(
    client, sergeant, officer, precinct_of_200, django_assert_max_num_queries
):
    _publish_many(sergeant, precinct_of_200, 2)
    User.objects.filter(pk=officer.pk).update(last_seen_at=timezone.now())  # seen just now
    client.force_login(officer)
    small = queries_for(lambda: client.get(reverse("bulletins:feed")))
    bulletins = _publish_many(sergeant, precinct_of_200, 18, start=2)
    for bulletin in bulletins[:5]:
        client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})
    assert Recipient.objects.count() == 20 * 202

    with django_assert_max_num_queries(10):
        big = queries_for(lambda: client.get(reverse("bulletins:feed")))

    assert big == small
    assert client.get(reverse("bulletins:feed")).content.count(b'<li class="bulletin-card') == 20


def test_detail_query_count_does_not_grow_with_bulletins_or_versions(
    client, sergeant, officer, precinct_of_200, django_assert_max_num_queries
):
    first = _publish_many(sergeant, precinct_of_200, 2)[0]
    User.objects.filter(pk=officer.pk).update(last_seen_at=timezone.now())  # seen just now
    client.force_login(officer)
    small = queries_for(lambda: client.get(reverse("bulletins:detail", args=[first.pk])))
    target = _publish_many(sergeant, precinct_of_200, 18, start=2)[0]
    for n in range(4):
        authoring.amend_bulletin(
            target,
            by=sergeant,
            now=timezone.now(),
            reason=f"Change {n}",
            is_material=True,
            body=f"Version {n + 2}",
        )

    with django_assert_max_num_queries(21):  # 21st: the reader's own answers (cannot comply)
        big = queries_for(lambda: client.get(reverse("bulletins:detail", args=[target.pk])))

    assert big == small
    assert target.versions.count() == 5


def test_acknowledge_query_count_does_not_grow_with_bulletins(
    client, sergeant, officer, precinct_of_200, django_assert_max_num_queries
):
    first = _publish_many(sergeant, precinct_of_200, 2)[0]
    client.force_login(officer)
    url = reverse("bulletins:acknowledge", args=[first.pk])
    small = queries_for(lambda: client.post(url, {"version": 1}))
    target = _publish_many(sergeant, precinct_of_200, 18, start=2)[0]

    # The person (for the session), then one statement writes the whole acknowledgement.
    with django_assert_max_num_queries(2):
        big = queries_for(
            lambda: client.post(reverse("bulletins:acknowledge", args=[target.pk]), {"version": 1})
        )

    assert big == small
    assert Recipient.objects.filter(user=officer, acknowledged_version=1).count() == 2


def _end_many(by, unit, count, *, start=0):
    """Half expired by the clock, half lifted with a reason."""
    now = timezone.now()
    ended = []
    for n in range(count):
        if n % 2:
            bulletin = published_bulletin(
                by,
                unit,
                now=now - timedelta(days=3),
                title=f"Ended {start + n}",
                expires_at=now - timedelta(days=2),
            )
        else:
            bulletin = published_bulletin(by, unit, title=f"Lifted {start + n}")
            authoring.lift_bulletin(bulletin, by=by, now=now, reason=f"Reason {start + n}")
        ended.append(bulletin)
    return ended


def test_history_query_count_does_not_grow_with_ended_bulletins(
    client, sergeant, officer, precinct_of_200, django_assert_max_num_queries
):
    _end_many(sergeant, precinct_of_200, 2)
    client.force_login(officer)
    client.get(reverse("bulletins:history"))  # the urgent banner is kept from here on
    small = queries_for(lambda: client.get(reverse("bulletins:history")))
    _end_many(sergeant, precinct_of_200, 48, start=2)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("bulletins:history"))
    big = queries_for(lambda: client.get(reverse("bulletins:history")))

    assert len(response.context["bulletins"]) == 50
    assert big == small


def test_the_officers_feed_bulletin_and_acknowledge_are_the_first_patterns_tried():
    """At shift change almost every request is one of these, and Django tries the URL patterns
    in order: behind the portal's and the rest of the bulletins' patterns, trying them cost
    about a twentieth of an acknowledgement's time in the web process (bench, instructions
    counted)."""
    first = get_resolver().url_patterns[0]

    assert [pattern.name for pattern in first.url_patterns[:3]] == [
        "feed", "detail", "acknowledge"
    ]  # fmt: skip
    assert resolve("/bulletins/7/acknowledge").url_name == "acknowledge"
    assert resolve("/people/7/edit").url_name == "person_edit"  # the portal's, after them
    assert resolve("/people/7/").url_name == "person"

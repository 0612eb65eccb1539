"""Installable and readable offline (issue 22): the manifest, the worker, the bundle of what a
device keeps for the signed-in person, and what ends it."""

import json
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Attachment, Recipient
from bulletins.services import attachments, authoring
from portal.offline import OFFLINE_COPY_HEADER, account_key
from portal.sessions import SIGNED_IN_AT
from tests.factories import approved_by_if_needed, draft_bulletin, published_bulletin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _detail(bulletin):
    return reverse("bulletins:detail", args=[bulletin.pk])


def _with_pdfs(by, unit, *names, **fields):
    draft = draft_bulletin(by, unit, **fields)
    uploads = [SimpleUploadedFile(name, PDF, content_type="application/pdf") for name in names]
    attachments.attach_files(
        draft, uploads, ["application/pdf"] * len(uploads), by=by, now=timezone.now()
    )
    return authoring.publish_bulletin(
        draft, by=by, now=timezone.now(), approved_by=approved_by_if_needed(draft, by)
    )


def _attachment_url(attachment):
    return reverse("bulletins:attachment", args=[attachment.bulletin_id, attachment.pk])


def _bundle(client):
    response = client.get(reverse("bulletins:offline_bundle"))
    assert response.status_code == HTTPStatus.OK
    return response.json()


def test_the_manifest_makes_the_portal_installable(client):
    response = client.get("/manifest.webmanifest")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == "Officer Safety Bulletins"
    assert manifest["short_name"]
    assert manifest["start_url"] == reverse("bulletins:feed")
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] and manifest["background_color"]
    icons = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= icons
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        assert icon["src"].startswith("/static/icons/")


def test_every_page_links_the_manifest_the_icons_and_both_theme_colours(client, officer):
    client.force_login(officer)

    html = client.get(reverse("bulletins:feed")).content.decode()

    assert '<link rel="manifest" href="/manifest.webmanifest">' in html
    assert 'rel="apple-touch-icon"' in html
    assert 'name="theme-color" content="#0a4da3" media="(prefers-color-scheme: light)"' in html
    assert 'media="(prefers-color-scheme: dark)"' in html
    assert 'name="apple-mobile-web-app-capable" content="yes"' in html
    assert 'data-worker="/sw.js"' in html
    assert '<div id="offline-banner" class="offline-banner" hidden></div>' in html


def test_the_worker_is_served_at_the_root_as_javascript_never_cached(client):
    response = client.get("/sw.js")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    script = response.content.decode()
    assert 'addEventListener("fetch"' in script
    assert "importScripts(...CONFIG.imports)" in script
    config = json.loads(script.split("const CONFIG = ", 1)[1].split(";\n", 1)[0])
    assert [url.rsplit("/", 1)[-1].split(".")[0] for url in config["imports"]] == [
        "sw-ack",
        "sw-push",
    ]
    assert config["bundleUrl"] == reverse("bulletins:offline_bundle")
    assert any("portal." in url and url.endswith(".css") for url in config["precache"])


def test_the_offline_page_is_for_anyone(client):
    response = client.get(reverse("offline"))

    assert response.status_code == HTTPStatus.OK
    assert "You are offline and this page was not saved" in response.content.decode()


def test_nobody_signed_in_gets_no_bundle(client, officer, sergeant, precinct17):
    published_bulletin(sergeant, precinct17, title="Pair up")

    response = client.get(reverse("bulletins:offline_bundle"))

    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(reverse("account_login"))


def test_the_bundle_lists_the_feed_and_exactly_the_bulletins_in_force_for_me(
    client, officer, sergeant, admin, precinct17, precinct75, agency
):
    now = timezone.now()
    mine = published_bulletin(sergeant, precinct17, title="Pair up in the 17th")
    everyone = published_bulletin(admin, agency, title="No solo posts", priority=2)
    elsewhere = published_bulletin(admin, precinct75, title="The 75th only")
    ended = published_bulletin(
        sergeant, precinct17, now=now - timedelta(days=2), expires_at=now - timedelta(hours=1)
    )
    lifted = published_bulletin(sergeant, precinct17, title="Guard the desk")
    authoring.lift_bulletin(lifted, by=sergeant, now=now, reason="Threat not credible.")
    later = published_bulletin(sergeant, precinct17, effective_at=now + timedelta(hours=2))
    client.force_login(officer)

    bundle = _bundle(client)

    assert bundle["pages"] == [reverse("bulletins:feed"), _detail(mine), _detail(everyone)]
    for control in (elsewhere, ended, lifted, later):
        assert _detail(control) not in bundle["pages"]
    assert bundle["restricted"] == []
    assert bundle["account"] == account_key(officer)
    assert str(officer.pk) != bundle["account"] and len(bundle["account"]) == 32


def test_intelligence_is_listed_apart_and_not_kept(client, officer, sergeant, precinct17):
    order = published_bulletin(sergeant, precinct17, title="Pair up")
    intelligence = published_bulletin(
        sergeant, precinct17, kind="intelligence", title="Threat on social media"
    )
    client.force_login(officer)

    bundle = _bundle(client)

    assert _detail(order) in bundle["pages"]
    assert _detail(intelligence) not in bundle["pages"]
    assert bundle["restricted"] == [_detail(intelligence)]
    assert bundle["restricted_kept"] is False


def test_intelligence_is_kept_when_the_agency_allows_it(
    client, settings, officer, sergeant, precinct17
):
    settings.OFFLINE_RESTRICTED = True
    intelligence = published_bulletin(sergeant, precinct17, kind="intelligence", title="Threat")
    client.force_login(officer)

    bundle = _bundle(client)

    assert _detail(intelligence) in bundle["pages"]
    assert bundle["restricted"] == []
    assert bundle["restricted_kept"] is True


def test_attachments_are_kept_up_to_the_cap_most_urgent_first(
    client, settings, officer, sergeant, precinct17
):
    settings.OFFLINE_ATTACHMENTS_MB = 20
    urgent = _with_pdfs(sergeant, precinct17, "roster.pdf", "map.pdf", priority=1)
    routine = _with_pdfs(sergeant, precinct17, "notes.pdf", "large.pdf", priority=3)
    roster, big_map = urgent.attachments.order_by("pk")
    notes, large = routine.attachments.order_by("pk")
    Attachment.objects.filter(pk=roster.pk).update(size=9 * MB)
    Attachment.objects.filter(pk=big_map.pk).update(size=10 * MB)
    Attachment.objects.filter(pk=notes.pk).update(size=2 * MB)  # 21 MB with it: too much
    Attachment.objects.filter(pk=large.pk).update(size=MB)  # 20 MB in all: just fits
    client.force_login(officer)

    bundle = _bundle(client)

    assert bundle["attachments"] == [
        _attachment_url(roster),
        _attachment_url(big_map),
        _attachment_url(large),
    ]


def test_restricted_attachments_stay_off_the_device(client, officer, sergeant, precinct17):
    _with_pdfs(sergeant, precinct17, "suspect.pdf", kind="intelligence")
    client.force_login(officer)

    assert _bundle(client)["attachments"] == []


def test_another_persons_bulletins_are_never_in_my_bundle(
    client, officer, outsider, sergeant, admin, precinct75
):
    theirs = _with_pdfs(admin, precinct75, "plan.pdf", title="The 75th only")
    client.force_login(officer)

    bundle = _bundle(client)

    assert _detail(theirs) not in bundle["pages"]
    assert bundle["attachments"] == []
    client.force_login(outsider)
    assert _detail(theirs) in _bundle(client)["pages"]


def test_the_bundle_ends_with_the_session_absolute_limit(client, settings, officer):
    settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS = 3600
    client.force_login(officer)
    session = client.session
    signed_in_at = time.time() - 600
    session[SIGNED_IN_AT] = signed_in_at
    session.save()

    bundle = _bundle(client)

    assert bundle["expires_at"] == int((signed_in_at + 3600) * 1000)


def test_the_etag_changes_when_a_kept_page_would(client, officer, sergeant, precinct17):
    from bulletins.services import reading

    order = published_bulletin(sergeant, precinct17, title="Pair up")
    client.force_login(officer)
    before = _bundle(client)["etag"]
    assert _bundle(client)["etag"] == before

    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())

    assert _bundle(client)["etag"] != before


def test_the_devices_copy_of_a_page_is_not_its_reader_opening_it(
    client, officer, sergeant, precinct17
):
    order = published_bulletin(sergeant, precinct17, title="Pair up")
    client.force_login(officer)

    copy = client.get(_detail(order), headers={OFFLINE_COPY_HEADER: "true"})

    assert copy.status_code == HTTPStatus.OK
    assert Recipient.objects.get(bulletin=order, user=officer).first_opened_at is None
    client.get(_detail(order))
    assert Recipient.objects.get(bulletin=order, user=officer).first_opened_at is not None


def test_restricted_cards_are_marked_for_the_worker_to_leave_out(
    client, officer, sergeant, precinct17
):
    published_bulletin(sergeant, precinct17, kind="intelligence", title="Threat on social media")
    published_bulletin(sergeant, precinct17, title="Pair up")
    client.force_login(officer)

    html = client.get(reverse("bulletins:feed")).content.decode()

    restricted = html.split("<!--offline-restricted-->", 1)[1].split("<!--/offline-restricted-->")
    assert "Threat on social media" in restricted[0]
    assert "Pair up" not in restricted[0]
    assert html.count("<!--offline-restricted-->") == 1


def test_signing_out_clears_the_devices_copy(client, officer):
    client.force_login(officer)

    response = client.post(reverse("account_logout"))

    assert '"cache"' in response.headers["Clear-Site-Data"]
    assert '"storage"' in response.headers["Clear-Site-Data"]
    assert client.get(reverse("bulletins:offline_bundle")).status_code == HTTPStatus.FOUND

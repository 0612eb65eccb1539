"""The bulletin form's time span, its preview, and the words and times around them."""

import datetime as dt
import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Bulletin
from bulletins.services import authoring
from tests.factories import draft_bulletin, published_bulletin
from tests.test_bulletin_views import bulletin_form, local, text_of

pytestmark = pytest.mark.django_db

API = "/api/v1"
BOTH_ENDS = "Give an end time or tick Until further notice, not both."


def post_json(client, url, data):
    return client.post(url, data, content_type="application/json")


def time_span(bulletin, now):
    template = Template("{% load bulletin_tags %}{% time_span bulletin now %}")
    return template.render(Context({"bulletin": bulletin, "now": now}))


# 3. An end time and "Until further notice" together are refused, never silently dropped


def test_an_end_time_with_until_further_notice_is_refused_on_the_form(client, sergeant, precinct17):
    client.force_login(sergeant)
    ends = local(timezone.now() + timedelta(hours=36))

    response = client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], expires_at=ends, until_further_notice="on"),
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.context["form"].errors["expires_at"] == [BOTH_ENDS]
    assert BOTH_ENDS in response.text
    assert not Bulletin.objects.exists()


def test_until_further_notice_alone_or_an_end_alone_is_accepted(client, sergeant, precinct17):
    client.force_login(sergeant)
    ends = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=36)

    open_ended = client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], expires_at="", until_further_notice="on"),
    )
    fixed = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], expires_at=local(ends))
    )

    assert open_ended.status_code == fixed.status_code == HTTPStatus.FOUND
    assert sorted(Bulletin.objects.values_list("expires_at", flat=True), key=bool) == [None, ends]


def test_the_service_refuses_an_end_time_with_until_further_notice(sergeant, precinct17):
    now = timezone.now()

    with pytest.raises(ValidationError) as refused:
        draft_bulletin(
            sergeant, precinct17, now=now, expires_at=now + timedelta(hours=36),
            until_further_notice=True,
        )  # fmt: skip

    assert refused.value.message_dict == {"expires_at": [BOTH_ENDS]}
    assert not Bulletin.objects.exists()


def test_the_api_refuses_an_end_time_with_until_further_notice(client, sergeant, precinct17):
    client.force_login(sergeant)
    payload = {
        "title": "No solo posts",
        "instruction": "Work in pairs.",
        "audience": [{"unit_id": precinct17.pk, "include_subtree": True}],
        "expires_at": (timezone.now() + timedelta(hours=36)).isoformat(),
        "until_further_notice": True,
    }

    response = post_json(client, f"{API}/bulletins", payload)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["field"] == "expires_at"
    assert response.json()["errors"] == [{"field": "expires_at", "message": BOTH_ENDS}]
    assert not Bulletin.objects.exists()


def test_the_api_still_turns_a_fixed_end_into_until_further_notice(client, sergeant, precinct17):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, precinct17, now=now, expires_at=now + timedelta(hours=8)
    )
    client.force_login(sergeant)

    response = post_json(
        client,
        f"{API}/bulletins/{bulletin.pk}/amend",
        {"reason": "Open ended now", "is_material": False, "until_further_notice": True},
    )

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["expires_at"] is None


# 12. The date fields are read, labelled and shortcut in the agency's time zone


def test_the_lift_and_amend_pages_label_their_times_with_the_agency_time_zone(
    client, sergeant, precinct17
):
    order = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    lift = client.get(reverse("bulletins:lift", args=[order.pk])).text
    amend = client.get(reverse("bulletins:amend", args=[order.pk])).text

    assert "Lift at (New York time)" in lift
    assert "Ends at (New York time)" in amend
    assert 'data-time-zone="America/New_York"' in amend


def test_the_date_fields_are_labelled_with_the_agency_time_zone(client, sergeant):
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:create")).text

    assert '<label for="id_effective_at">Takes effect at (New York time)</label>' in page
    assert '<label for="id_expires_at">Ends at (New York time)</label>' in page
    assert 'data-time-zone="America/New_York"' in page
    served = int(re.search(r'data-server-now="(\d+)"', page)[1])
    assert abs(served - timezone.now().timestamp()) < 60


def test_another_time_zone_labels_the_fields_with_its_name(client, sergeant, settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:create")).text

    assert "Ends at (Los Angeles time)" in page
    assert 'data-time-zone="America/Los_Angeles"' in page


# 15. The preview shows when it takes effect and ends, and how many it reaches


def test_the_preview_shows_a_scheduled_start_a_fixed_end_and_the_audience(
    client, sergeant, officer, auxiliary, precinct17
):
    starts = timezone.make_aware(dt.datetime(2031, 7, 8, 6, 0))
    draft = draft_bulletin(
        sergeant, precinct17, effective_at=starts, expires_at=starts + timedelta(hours=36)
    )
    client.force_login(sergeant)

    page = text_of(client.get(reverse("bulletins:preview", args=[draft.pk])))

    assert "Takes effect Tue 08 Jul 2031 06:00 (New York time)" in page
    assert "Ends Wed 09 Jul 2031 18:00 (New York time)" in page
    assert "Audience Reaches 3 people. 17th Precinct (and below)." in page


def test_the_preview_of_an_open_ended_order_says_so_with_its_review(client, sergeant, precinct17):
    draft = draft_bulletin(sergeant, precinct17, review_interval=timedelta(hours=12))
    client.force_login(sergeant)

    page = text_of(client.get(reverse("bulletins:preview", args=[draft.pk])))

    assert "Takes effect As soon as you press Publish" in page
    assert "Ends Until further notice, reviewed every 12 hours" in page


def test_the_audience_the_preview_counts_is_the_one_told(
    client, sergeant, officer, auxiliary, outsider, precinct17
):
    draft = draft_bulletin(sergeant, precinct17, to_auxiliary=False)
    client.force_login(sergeant)

    page = text_of(client.get(reverse("bulletins:preview", args=[draft.pk])))
    published = authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    counted = int(re.search(r"Reaches (\d+) (?:people|person)", page)[1])
    assert counted == published.recipients.count() == 2


# 17. Plain words: "In force since 06:41", the evidence record, the icon


def test_in_force_says_since_when_not_for_how_long(sergeant, precinct17):
    took_effect = timezone.make_aware(dt.datetime(2031, 7, 8, 6, 41))
    bulletin = published_bulletin(sergeant, precinct17, now=took_effect)

    assert time_span(bulletin, took_effect) == "In force since 06:41 - until further notice"
    assert time_span(bulletin, took_effect + timedelta(hours=5)).startswith("In force since 06:41")
    assert time_span(bulletin, took_effect + timedelta(days=1)).startswith(
        "In force since Tue 08 Jul 06:41"
    )


def test_close_to_midnight_a_kept_page_says_the_day(sergeant, precinct17):
    took_effect = timezone.make_aware(dt.datetime(2031, 7, 8, 6, 41))
    bulletin = published_bulletin(sergeant, precinct17, now=took_effect)

    late = time_span(bulletin, timezone.make_aware(dt.datetime(2031, 7, 8, 23, 50)))

    assert late.startswith("In force since Tue 08 Jul 06:41")


def test_a_card_never_says_in_force_zero_minutes(client, sergeant, officer, precinct17):
    with time_machine.travel(timezone.make_aware(dt.datetime(2031, 7, 8, 6, 41, 5)), tick=False):
        published_bulletin(sergeant, precinct17)
        client.force_login(officer)

        page = text_of(client.get(reverse("bulletins:feed")))

    assert "In force since 06:41" in page
    assert "minutes" not in page


def test_the_evidence_record_says_until_further_notice_plainly(
    client, sergeant, officer, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    page = text_of(client.get(reverse("bulletins:evidence", args=[bulletin.pk, officer.pk])))

    assert "to until further notice" not in page
    assert re.search(r"In force From \S+, until further notice", page)


def test_the_evidence_record_of_a_fixed_end_gives_both_times(client, sergeant, officer, precinct17):
    now = timezone.now().replace(microsecond=0)
    bulletin = published_bulletin(
        sergeant, precinct17, now=now, expires_at=now + timedelta(hours=36)
    )
    client.force_login(sergeant)

    page = text_of(client.get(reverse("bulletins:evidence", args=[bulletin.pk, officer.pk])))

    ends = timezone.localtime(now + timedelta(hours=36)).isoformat()
    assert f"In force {timezone.localtime(now).isoformat()} to {ends}" in page


def test_the_favicon_is_served_to_anyone(client, officer):
    anonymous = client.get("/favicon.ico")
    client.force_login(officer)
    signed_in = client.get("/favicon.ico")
    page = client.get(reverse("bulletins:feed")).text

    assert anonymous.status_code == signed_in.status_code == HTTPStatus.FOUND
    assert re.search(r"/static/favicon\.[0-9a-f]+\.svg$", anonymous["Location"])
    assert f'<link rel="icon" href="{anonymous["Location"]}" type="image/svg+xml">' in page

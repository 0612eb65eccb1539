"""Drafts and scheduled: an author finds again the drafts they may manage, and the bulletins
published to take effect later."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins import permissions
from bulletins.models import Bulletin
from bulletins.services import approval, authoring
from portal.models import User
from tests.factories import UserFactory, draft_bulletin, published_bulletin

pytestmark = pytest.mark.django_db

DRAFTS = reverse("bulletins:drafts")


def drafts_page(client, **query):
    return client.get(DRAFTS, query)


def listed_drafts(response):
    return [bulletin.pk for bulletin in response.context["drafts"]]


def listed_scheduled(response):
    return [bulletin.pk for bulletin in response.context["scheduled"]]


def test_a_sergeant_finds_his_draft_with_its_facts_and_links(client, sergeant, precinct17):
    saved_at = timezone.now() - timedelta(minutes=30)
    draft = draft_bulletin(
        sergeant, precinct17, now=saved_at, title="Body cameras on", kind="advisory", priority=2
    )
    client.force_login(sergeant)

    response = drafts_page(client)

    assert response.status_code == HTTPStatus.OK
    assert listed_drafts(response) == [draft.pk]
    html = response.content.decode()
    assert "Body cameras on" in html
    assert "Advisory" in html
    assert "Priority" in html
    assert "To 17th Precinct (and below): everyone" in html
    assert f"Last saved {timezone.localtime(saved_at):%a %d %b %Y %H:%M}" in html
    assert "New York time" in html
    assert f'href="{reverse("bulletins:edit", args=[draft.pk])}"' in html
    assert f'href="{reverse("bulletins:preview", args=[draft.pk])}"' in html


def test_the_audience_summary_names_the_member_classes_when_not_everyone(
    client, sergeant, precinct17, squad17
):
    draft_bulletin(
        sergeant,
        [precinct17, squad17],
        subtree=False,
        to_auxiliary=False,
        to_civilian=False,
        supervisors_only=True,
    )
    client.force_login(sergeant)

    html = drafts_page(client).content.decode()

    assert "To 17th Precinct; 17th Precinct Anti-Crime: sworn members, supervisors only" in html


def test_another_supervisors_draft_outside_scope_never_appears(
    client, sergeant, sergeant75, admin, agency, precinct17, precinct75
):
    mine = draft_bulletin(sergeant, precinct17, title="Mine")
    theirs = draft_bulletin(sergeant75, precinct75, title="Theirs, in the 75th")
    agency_wide = draft_bulletin(admin, agency, title="Agency-wide, by the chief")
    for_my_precinct = draft_bulletin(admin, precinct17, title="The chief's, for the 17th")
    client.force_login(sergeant)

    response = drafts_page(client)

    assert set(listed_drafts(response)) == {mine.pk, for_my_precinct.pk}
    html = response.content.decode()
    assert "Theirs, in the 75th" not in html
    assert "Agency-wide, by the chief" not in html
    for draft in (mine, theirs, agency_wide, for_my_precinct):
        shown = draft.pk in listed_drafts(response)
        assert shown == permissions.can_manage(sergeant, draft)


def test_an_admin_sees_every_draft_in_the_agency(
    client, sergeant, sergeant75, admin, agency, precinct17, precinct75
):
    drafts = {
        draft_bulletin(sergeant, precinct17).pk,
        draft_bulletin(sergeant75, precinct75).pk,
        draft_bulletin(admin, agency).pk,
    }
    client.force_login(admin)

    assert set(listed_drafts(drafts_page(client))) == drafts


@pytest.mark.parametrize("persona", ["officer", "auxiliary"])
def test_those_who_do_not_author_are_refused(client, persona, request, sergeant, precinct17):
    draft_bulletin(sergeant, precinct17)
    client.force_login(request.getfixturevalue(persona))

    response = drafts_page(client)

    assert response.status_code == HTTPStatus.FORBIDDEN


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = drafts_page(client)

    assert response.status_code == HTTPStatus.FOUND
    assert DRAFTS not in response["Location"].split("?")[0]


def test_drafts_come_last_saved_first(client, sergeant, precinct17):
    now = timezone.now()
    older = draft_bulletin(sergeant, precinct17, now=now - timedelta(hours=3), title="Older")
    newer = draft_bulletin(sergeant, precinct17, now=now - timedelta(hours=2), title="Newer")
    authoring.save_draft(
        by=sergeant,
        targets=[(precinct17, True)],
        now=now - timedelta(hours=1),
        bulletin=older,
        title="Older, saved again",
    )
    client.force_login(sergeant)

    response = drafts_page(client)

    assert listed_drafts(response) == [older.pk, newer.pk]
    local = timezone.localtime(now - timedelta(hours=1))
    assert f"Last saved {local:%a %d %b %Y %H:%M}" in response.content.decode()


def test_scheduled_bulletins_are_listed_with_when_they_take_effect(
    client, sergeant, precinct17, precinct75, sergeant75
):
    now = timezone.now()
    takes_effect = now + timedelta(hours=6)
    scheduled = published_bulletin(
        sergeant, precinct17, now=now, effective_at=takes_effect, title="Paired from tonight"
    )
    in_force = published_bulletin(sergeant, precinct17, now=now, title="Already in force")
    elsewhere = published_bulletin(
        sergeant75, precinct75, now=now, effective_at=takes_effect, title="Elsewhere, later"
    )
    draft = draft_bulletin(sergeant, precinct17, effective_at=takes_effect)
    client.force_login(sergeant)

    response = drafts_page(client)

    assert listed_scheduled(response) == [scheduled.pk]
    assert listed_drafts(response) == [draft.pk]
    html = response.content.decode()
    assert f"Takes effect {timezone.localtime(takes_effect):%a %d %b %Y %H:%M}" in html
    assert f'href="{reverse("bulletins:detail", args=[scheduled.pk])}"' in html
    assert in_force.title not in html
    assert elsewhere.title not in html


def test_a_scheduled_bulletin_leaves_the_list_when_its_time_comes_whatever_its_status(
    client, sergeant, precinct17
):
    now = timezone.now()
    scheduled = published_bulletin(
        sergeant, precinct17, now=now, effective_at=now + timedelta(hours=1)
    )
    Bulletin.objects.filter(pk=scheduled.pk).update(effective_at=now - timedelta(minutes=1))
    client.force_login(sergeant)

    response = drafts_page(client)

    assert scheduled.status == Bulletin.Status.SCHEDULED
    assert listed_scheduled(response) == []


def test_nothing_to_list_says_so_in_plain_words(client, sergeant):
    client.force_login(sergeant)

    html = drafts_page(client).content.decode()

    assert "No drafts. Start one with New bulletin." in html
    assert f'href="{reverse("bulletins:create")}"' in html
    assert "Nothing scheduled." in html


def test_drafts_are_paginated(client, sergeant, precinct17):
    for number in range(30):
        draft_bulletin(sergeant, precinct17, title=f"Draft {number}")
    client.force_login(sergeant)

    first, second = drafts_page(client), drafts_page(client, page=2)

    assert len(listed_drafts(first)) == 25
    assert len(listed_drafts(second)) == 5
    assert set(listed_drafts(first)).isdisjoint(listed_drafts(second))
    assert "Older drafts" in first.content.decode()


def test_the_page_costs_the_same_queries_for_1_or_30_of_each(
    client, sergeant, precinct17, squad17, django_assert_num_queries
):
    now = timezone.now()

    def add_one_of_each(number):
        draft_bulletin(sergeant, [precinct17, squad17], title=f"Draft {number}")
        published_bulletin(
            sergeant, squad17, now=now, effective_at=now + timedelta(hours=number + 1)
        )

    add_one_of_each(0)
    client.force_login(sergeant)
    drafts_page(client)  # sessions and the like warmed up
    with CaptureQueriesContext(connection) as few:
        drafts_page(client)
    queries = len(few)  # read now: each request empties the connection's query log
    for number in range(1, 30):
        add_one_of_each(number)
    drafts_page(client)  # the urgent banner read again after the new bulletins

    with django_assert_num_queries(queries):
        response = drafts_page(client)

    assert len(listed_drafts(response)) == 25
    assert len(listed_scheduled(response)) == 25


def test_the_navigation_links_to_drafts_for_authors_only(client, sergeant, officer):
    client.force_login(sergeant)
    as_author = client.get(reverse("bulletins:history")).content.decode()
    client.force_login(officer)
    as_officer = client.get(reverse("bulletins:history")).content.decode()

    assert f'href="{DRAFTS}"' in as_author
    assert f'href="{DRAFTS}"' not in as_officer


def test_a_draft_awaiting_approval_or_sent_back_says_so(client, sergeant, manhattan):
    UserFactory(email="cmdr@agency.test", unit=manhattan, role=User.Role.SUPERVISOR)
    draft = draft_bulletin(sergeant, manhattan, title="Borough: guard the entrances")
    client.force_login(sergeant)
    assert "Awaiting approval." not in drafts_page(client).content.decode()

    approval.submit_for_approval(draft, by=sergeant, now=timezone.now())
    assert "Awaiting approval." in drafts_page(client).content.decode()

    approver = User.objects.get(email="cmdr@agency.test")
    approval.send_back(draft, by=approver, comment="Name the entrances.", now=timezone.now())
    html = drafts_page(client).content.decode()
    assert "Sent back:" in html and "Awaiting approval." not in html

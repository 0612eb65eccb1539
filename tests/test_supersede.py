"""A bulletin may supersede earlier ones: taking effect lifts them, in the same transaction."""

import re
from datetime import timedelta
from http import HTTPStatus
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from bulletins import cap
from bulletins.models import Bulletin, NotificationEvent
from bulletins.services import authoring, clock
from portal.models import AuditEvent
from tests.factories import UserFactory, draft_bulletin, make_unit, published_bulletin
from tests.test_api import bearer, post_json, token_for
from tests.test_bulletin_views import bulletin_form
from tests.test_cap import NS, cap_url, valid_document

pytestmark = pytest.mark.django_db

API = "/api/v1"
NEW_TITLE = "Paired patrols extended"


@pytest.fixture
def pairing_order(sergeant, precinct17):
    return published_bulletin(
        sergeant, precinct17, now=timezone.now() - timedelta(hours=2), title="Pairing order"
    )


def superseding_draft(by, unit, olds, **fields):
    return draft_bulletin(by, unit, title=NEW_TITLE, supersedes=olds, **fields)


def choices(page):
    """The Supersedes fieldset of the form page ("" when it is not there)."""
    start = page.find('class="field supersede-choices')
    return "" if start < 0 else page[start : page.index("</fieldset>", start)]


def state(bulletin):
    bulletin.refresh_from_db()
    return bulletin.status


# Publishing lifts, in one transaction


def test_publishing_lifts_what_it_supersedes_with_the_reason_in_the_same_transaction(
    sergeant, officer, precinct17, pairing_order, django_capture_on_commit_callbacks
):
    other = published_bulletin(sergeant, precinct17, title="Vehicle check")
    draft = superseding_draft(sergeant, precinct17, [pairing_order, other])
    now = timezone.now()

    with django_capture_on_commit_callbacks():
        published = authoring.publish_bulletin(draft, by=sergeant, now=now)

    assert published.status == Bulletin.Status.IN_FORCE
    for old in (pairing_order, other):
        old.refresh_from_db()
        assert old.status == Bulletin.Status.LIFTED
        assert old.ended_at == now
        assert old.lifted_by == sergeant
        assert old.lift_reason == f"Superseded by {NEW_TITLE} (#{published.pk})"
        lift = AuditEvent.objects.get(action="bulletin.lift", object_id=str(old.pk))
        assert lift.detail["superseded_by"] == published.pk
        assert NotificationEvent.objects.filter(
            bulletin=old, event=NotificationEvent.Event.LIFTED
        ).exists()
    assert list(Bulletin.objects.in_force(now).addressed_to(officer)) == [published]


def test_a_failure_on_the_second_leaves_both_as_they_were(sergeant, precinct17, pairing_order):
    other = published_bulletin(sergeant, precinct17, title="Vehicle check")
    draft = superseding_draft(sergeant, precinct17, [pairing_order, other])
    real_lift = authoring._lift
    calls = []

    def lift_then_fail(bulletin, **kwargs):
        calls.append(bulletin.pk)
        if len(calls) == 2:
            raise ValidationError("The database said no.")
        return real_lift(bulletin, **kwargs)

    with (
        mock.patch.object(authoring, "_lift", side_effect=lift_then_fail),
        pytest.raises(ValidationError),
    ):
        authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    assert calls == sorted([pairing_order.pk, other.pk])
    assert state(pairing_order) == state(other) == Bulletin.Status.IN_FORCE
    assert state(draft) == Bulletin.Status.DRAFT
    assert pairing_order.lift_reason == ""
    assert not AuditEvent.objects.filter(action="bulletin.lift").exists()
    assert not NotificationEvent.objects.filter(event=NotificationEvent.Event.LIFTED).exists()


def test_publication_is_refused_when_one_ended_meanwhile_and_nothing_changes(
    client, sergeant, precinct17, pairing_order
):
    other = published_bulletin(sergeant, precinct17, title="Vehicle check")
    draft = superseding_draft(sergeant, precinct17, [pairing_order, other])
    authoring.lift_bulletin(other, by=sergeant, now=timezone.now(), reason="Over")
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:publish", args=[draft.pk]), follow=True)

    assert "is no longer in force: take it out of Supersedes" in response.content.decode()
    assert state(draft) == Bulletin.Status.DRAFT
    assert state(pairing_order) == Bulletin.Status.IN_FORCE


def test_publication_is_refused_when_one_is_no_longer_the_authors_to_lift(
    sergeant, admin, precinct17, precinct75, pairing_order
):
    draft = superseding_draft(sergeant, precinct17, [pairing_order])
    pairing_order.audience.update(unit=precinct75)  # now outside the sergeant's command
    # ... and not his: an issuer keeps lifting their own (approval, issue 21)
    Bulletin.objects.filter(pk=pairing_order.pk).update(issued_by=admin)

    with pytest.raises(ValidationError, match="You may not lift"):
        authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    assert state(draft) == Bulletin.Status.DRAFT
    assert state(pairing_order) == Bulletin.Status.IN_FORCE


# Scheduled: lifted when it takes effect


def test_a_scheduled_bulletin_lifts_what_it_supersedes_when_it_takes_effect(
    sergeant, officer, precinct17, pairing_order, django_capture_on_commit_callbacks
):
    now = timezone.now()
    starts = now + timedelta(hours=1)
    draft = superseding_draft(sergeant, precinct17, [pairing_order], effective_at=starts)
    with django_capture_on_commit_callbacks():
        published = authoring.publish_bulletin(draft, by=sergeant, now=now)
    assert published.status == Bulletin.Status.SCHEDULED
    assert state(pairing_order) == Bulletin.Status.IN_FORCE

    clock.sweep(starts - timedelta(minutes=1))
    assert state(pairing_order) == Bulletin.Status.IN_FORCE

    with django_capture_on_commit_callbacks():
        done = clock.sweep(starts + timedelta(seconds=30))

    assert done["took_effect"] == 1
    assert state(published) == Bulletin.Status.IN_FORCE
    assert state(pairing_order) == Bulletin.Status.LIFTED
    assert pairing_order.ended_at == starts + timedelta(seconds=30)
    assert pairing_order.lifted_by == sergeant
    assert pairing_order.lift_reason == f"Superseded by {NEW_TITLE} (#{published.pk})"
    later = starts + timedelta(minutes=5)
    assert list(Bulletin.objects.in_force(later).addressed_to(officer)) == [published]


def test_taking_effect_leaves_one_that_ended_meanwhile_as_it_ended(
    sergeant, precinct17, pairing_order
):
    now = timezone.now()
    starts = now + timedelta(hours=1)
    draft = superseding_draft(sergeant, precinct17, [pairing_order], effective_at=starts)
    published = authoring.publish_bulletin(draft, by=sergeant, now=now)
    authoring.lift_bulletin(pairing_order, by=sergeant, now=now, reason="Over early")

    clock.sweep(starts)

    assert state(published) == Bulletin.Status.IN_FORCE
    assert state(pairing_order) == Bulletin.Status.LIFTED
    assert pairing_order.lift_reason == "Over early"


# Choosing what to supersede


def test_the_form_offers_live_bulletins_the_author_may_lift_most_recent_first(
    client, sergeant, admin, agency, precinct17, pairing_order
):
    published_bulletin(sergeant, precinct17, title="Vehicle check")
    ended = published_bulletin(sergeant, precinct17, title="Old ended order")
    authoring.lift_bulletin(ended, by=sergeant, now=timezone.now(), reason="Over")
    published_bulletin(admin, agency, title="Department-wide order")
    draft_bulletin(sergeant, precinct17, title="Someone's draft")
    client.force_login(sergeant)

    page = choices(client.get(reverse("bulletins:create")).content.decode())

    assert "Supersedes (optional)" in page
    assert page.index("Vehicle check") < page.index("Pairing order")
    for absent in ("Old ended order", "Department-wide order", "Someone&#x27;s draft"):
        assert absent not in page
    assert "They are lifted when this one takes effect" in page


@pytest.mark.parametrize("which", ["ended", "not_mine", "draft"])
def test_the_form_refuses_what_the_author_may_not_supersede(
    client, sergeant, admin, agency, precinct17, which
):
    old = {
        "ended": lambda: authoring.lift_bulletin(
            published_bulletin(sergeant, precinct17), by=sergeant, now=timezone.now(), reason="x"
        ),
        "not_mine": lambda: published_bulletin(admin, agency),
        "draft": lambda: draft_bulletin(sergeant, precinct17),
    }[which]()
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], title=NEW_TITLE, supersedes=[old.pk]),
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Select a valid choice" in response.content.decode()
    assert not Bulletin.objects.filter(title=NEW_TITLE).exists()


def test_the_service_refuses_what_the_author_may_not_supersede(
    sergeant, sergeant75, precinct17, precinct75, pairing_order
):
    with pytest.raises(ValidationError) as refused:
        draft_bulletin(sergeant75, precinct75, title=NEW_TITLE, supersedes=[pairing_order])
    assert "supersedes" in refused.value.message_dict
    assert not Bulletin.objects.filter(title=NEW_TITLE).exists()
    draft = draft_bulletin(sergeant, precinct17)
    with pytest.raises(ValidationError):  # a draft is not in force
        superseding_draft(sergeant, precinct17, [draft])
    with pytest.raises(ValidationError):  # nor is a draft its own predecessor
        authoring.save_draft(
            by=sergeant, targets=[(precinct17, True)], now=timezone.now(), bulletin=draft,
            title="x", instruction="y", supersedes=[draft],
        )  # fmt: skip


def test_a_draft_keeps_its_choice_and_the_edit_form_shows_it(
    client, sergeant, precinct17, pairing_order
):
    client.force_login(sergeant)
    client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], title=NEW_TITLE, supersedes=[pairing_order.pk]),
    )
    draft = Bulletin.objects.get(title=NEW_TITLE)
    assert list(draft.supersedes.all()) == [pairing_order]

    edit = client.get(reverse("bulletins:edit", args=[draft.pk])).content.decode()
    assert re.search(rf'value="{pairing_order.pk}"[^>]* checked', choices(edit))
    preview = client.get(reverse("bulletins:preview", args=[draft.pk])).content.decode()
    assert "Supersedes (lifted when this one takes effect)" in preview
    assert reverse("bulletins:detail", args=[pairing_order.pk]) in preview

    client.post(reverse("bulletins:edit", args=[draft.pk]), bulletin_form([precinct17]))
    assert not draft.supersedes.exists()


def test_the_scheduled_choice_says_when_it_lifts_in_the_help_text(client, sergeant, precinct17):
    client.force_login(sergeant)
    starts = timezone.now() + timedelta(hours=3)
    old = published_bulletin(
        sergeant, precinct17, title="Later order", effective_at=starts, expires_at=None
    )
    page = choices(client.get(reverse("bulletins:create")).content.decode())
    assert f"Later order (takes effect {timezone.localtime(starts):%a %d %b %H:%M})" in page
    assert old.status == Bulletin.Status.SCHEDULED


# Links both ways, never to what the reader cannot see


def test_both_pages_link_to_each_other(client, sergeant, officer, precinct17, pairing_order):
    new = authoring.publish_bulletin(
        superseding_draft(sergeant, precinct17, [pairing_order]), by=sergeant, now=timezone.now()
    )
    client.force_login(officer)

    old_page = client.get(reverse("bulletins:detail", args=[pairing_order.pk])).content.decode()
    new_page = client.get(reverse("bulletins:detail", args=[new.pk])).content.decode()

    assert "Superseded by:" in old_page
    assert f'href="{reverse("bulletins:detail", args=[new.pk])}">{NEW_TITLE}</a>' in old_page
    assert f"Reason: Superseded by {NEW_TITLE} (#{new.pk})" in old_page
    assert "Supersedes:" in new_page
    assert f'href="{reverse("bulletins:detail", args=[pairing_order.pk])}">Pairing order' in (
        new_page
    )


def test_no_link_to_what_the_reader_cannot_see(
    client, sergeant, officer, squad_officer, admin, agency, precinct17, squad17, pairing_order
):
    squad_only = published_bulletin(sergeant, squad17, title="Squad only order")
    new = authoring.publish_bulletin(
        superseding_draft(sergeant, precinct17, [pairing_order, squad_only]),
        by=sergeant,
        now=timezone.now(),
    )
    client.force_login(squad_officer)
    seen = client.get(reverse("bulletins:detail", args=[new.pk])).content.decode()
    assert "Squad only order" in seen

    client.force_login(officer)  # 17th, not in the squad
    page = client.get(reverse("bulletins:detail", args=[new.pk])).content.decode()

    assert "Supersedes:" in page and "Pairing order" in page
    assert "Squad only order" not in page
    assert reverse("bulletins:detail", args=[squad_only.pk]) not in page


def test_a_draft_that_would_supersede_is_not_shown_on_the_old_page(
    client, sergeant, officer, precinct17, pairing_order
):
    superseding_draft(sergeant, precinct17, [pairing_order])
    for person in (officer, sergeant):
        client.force_login(person)
        page = client.get(reverse("bulletins:detail", args=[pairing_order.pk])).content.decode()
        assert "superseded by" not in page.lower()


def test_the_links_cost_the_same_queries_for_many(client, sergeant, officer, precinct17):
    olds = [published_bulletin(sergeant, precinct17, title=f"Order {n}") for n in range(6)]
    new = authoring.publish_bulletin(
        superseding_draft(sergeant, precinct17, olds[:1]), by=sergeant, now=timezone.now()
    )
    client.force_login(officer)
    url = reverse("bulletins:detail", args=[new.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    new.supersedes.set(olds)
    with CaptureQueriesContext(connection) as six:
        client.get(url)
    assert len(six) == len(one)


# CAP and API


def test_cap_alert_references_each_superseded_alert_and_validates(
    client, sergeant, officer, precinct17, pairing_order
):
    pairing_order = authoring.amend_bulletin(
        pairing_order, by=sergeant, now=timezone.now() - timedelta(hours=1), reason="Both shifts",
        is_material=True, title="Pairing order, both shifts",
    )  # fmt: skip
    new = authoring.publish_bulletin(
        superseding_draft(sergeant, precinct17, [pairing_order]), by=sergeant, now=timezone.now()
    )
    client.force_login(officer)

    document = valid_document(client.get(cap_url(new, 1)))
    old_cancel = valid_document(
        client.get(reverse("bulletins:cap_cancel", args=[pairing_order.pk]))
    )

    old_v2 = pairing_order.versions.get(number=2)
    expected = ",".join(
        [cap.sender(), cap.identifier(pairing_order.pk, 2), cap.cap_time(old_v2.created_at)]
    )
    assert document.findtext("cap:references", namespaces=NS) == expected
    assert document.findtext("cap:msgType", namespaces=NS) == "Alert"
    old_alert = etree.fromstring(client.get(cap_url(pairing_order, 2)).content)
    assert old_alert.findtext("cap:sent", namespaces=NS) == expected.split(",")[2]
    assert old_cancel.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert "Superseded by" in old_cancel.findtext("cap:note", namespaces=NS)


def test_an_amended_superseding_bulletin_still_references_it_first(
    client, sergeant, officer, precinct17, pairing_order
):
    new = authoring.publish_bulletin(
        superseding_draft(sergeant, precinct17, [pairing_order]), by=sergeant, now=timezone.now()
    )
    authoring.amend_bulletin(
        new,
        by=sergeant,
        now=timezone.now(),
        reason="Typo",
        is_material=True,
        title="Pairs, extended",
    )
    client.force_login(officer)

    references = valid_document(client.get(cap_url(new, 2))).findtext(
        "cap:references", namespaces=NS
    )

    assert [ref.split(",")[1] for ref in references.split(" ")] == [
        cap.identifier(pairing_order.pk, 1),
        cap.identifier(new.pk, 1),
    ]


def test_the_api_creates_a_superseding_draft_and_reads_both_ways(
    client, sergeant, officer, precinct17, pairing_order
):
    headers = bearer(token_for(sergeant, is_read_only=False))
    payload = {
        "title": NEW_TITLE,
        "instruction": "Work in pairs.",
        "kind": "order",
        "priority": 1,
        "audience": [{"unit_id": precinct17.pk, "include_subtree": True}],
        "until_further_notice": True,
        "supersedes": [pairing_order.pk],
    }

    created = post_json(client, f"{API}/bulletins", payload, headers=headers)
    pk = created.json()["id"]
    published = post_json(client, f"{API}/bulletins/{pk}/publish", headers=headers)
    old = client.get(f"{API}/bulletins/{pairing_order.pk}", headers=headers).json()

    assert created.status_code == HTTPStatus.CREATED, created.content
    assert created.json()["supersedes"] == [pairing_order.pk]
    assert published.json()["state"] == "in_force"
    assert old["state"] == "lifted"
    assert old["superseded_by"] == [pk]
    assert old["lift_reason"] == f"Superseded by {NEW_TITLE} (#{pk})"


def test_the_api_refuses_a_bulletin_not_the_authors_to_supersede(
    client, sergeant75, precinct75, pairing_order
):
    headers = bearer(token_for(sergeant75, is_read_only=False))
    payload = {
        "title": NEW_TITLE,
        "instruction": "Work in pairs.",
        "audience": [{"unit_id": precinct75.pk, "include_subtree": True}],
        "until_further_notice": True,
        "supersedes": [pairing_order.pk],
    }

    response = post_json(client, f"{API}/bulletins", payload, headers=headers)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.content
    assert response.json()["field"] == "supersedes"
    assert state(pairing_order) == Bulletin.Status.IN_FORCE
    assert not Bulletin.objects.filter(title=NEW_TITLE).exists()


def test_the_api_shows_only_visible_ids(
    client, sergeant, officer, precinct17, squad17, pairing_order
):
    squad_only = published_bulletin(sergeant, squad17, title="Squad only order")
    new = authoring.publish_bulletin(
        superseding_draft(sergeant, precinct17, [pairing_order, squad_only]),
        by=sergeant,
        now=timezone.now(),
    )
    client.force_login(officer)

    assert client.get(f"{API}/bulletins/{new.pk}").json()["supersedes"] == [pairing_order.pk]


# Permission rows: who may supersede what


@pytest.mark.parametrize(
    ("persona", "old_of", "allowed"),
    [
        ("sergeant", "sergeant", True),  # their own precinct's order
        ("admin", "sergeant", True),  # an admin over the whole agency
        ("sergeant", "admin", False),  # the department's order: above the sergeant
        ("sergeant75", "sergeant", False),  # another precinct's
    ],
)
def test_permission_rows(
    request, client, settings, precinct17, precinct75, agency, persona, old_of, allowed
):
    settings.APPROVAL_REQUIRED_FOR = "none"  # the admin's agency-wide order goes out alone
    author = request.getfixturevalue(persona)
    owner = request.getfixturevalue(old_of)
    old = published_bulletin(owner, precinct17 if old_of == "sergeant" else agency, title="Old")
    own_unit = {"sergeant": precinct17, "admin": agency, "sergeant75": precinct75}[persona]
    client.force_login(author)

    form = choices(client.get(reverse("bulletins:create")).content.decode())
    response = client.post(
        reverse("bulletins:create"),
        bulletin_form([own_unit], title=NEW_TITLE, supersedes=[old.pk]),
    )

    assert (f'value="{old.pk}"' in form and "Supersedes (optional)" in form) == allowed
    if allowed:
        assert response.status_code == HTTPStatus.FOUND
        draft = Bulletin.objects.get(title=NEW_TITLE)
        client.post(reverse("bulletins:publish", args=[draft.pk]))
        assert state(old) == Bulletin.Status.LIFTED
    else:
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
        assert state(old) == Bulletin.Status.IN_FORCE


def test_an_officer_cannot_write_a_superseding_bulletin(client, officer, precinct17, pairing_order):
    client.force_login(officer)
    response = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], supersedes=[pairing_order.pk])
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert state(pairing_order) == Bulletin.Status.IN_FORCE


def test_a_scheduled_alert_references_what_was_sent_before_it_only(
    client, sergeant, officer, precinct17, pairing_order
):
    now = timezone.now()
    draft = superseding_draft(
        sergeant, precinct17, [pairing_order], effective_at=now + timedelta(hours=1)
    )
    new = authoring.publish_bulletin(draft, by=sergeant, now=now)
    authoring.amend_bulletin(
        pairing_order, by=sergeant, now=now + timedelta(minutes=5), reason="Both shifts",
        is_material=True, title="Pairing order, both shifts",
    )  # fmt: skip
    client.force_login(sergeant)

    document = valid_document(client.get(cap_url(new, 1)))

    reference = document.findtext("cap:references", namespaces=NS)
    assert reference.split(",")[1] == cap.identifier(pairing_order.pk, 1)


def test_never_across_agencies_even_for_a_superuser(agency, precinct17, pairing_order):
    other_agency = make_unit("County Sheriff")
    root = UserFactory(email="root@agency.test", unit=agency, is_superuser=True)

    with pytest.raises(ValidationError) as refused:
        draft_bulletin(root, other_agency, title=NEW_TITLE, supersedes=[pairing_order])

    assert "supersedes" in refused.value.message_dict
    assert state(pairing_order) == Bulletin.Status.IN_FORCE


def test_an_exercise_and_a_real_order_never_supersede_each_other(
    sergeant, precinct17, pairing_order
):
    drill = published_bulletin(sergeant, precinct17, title="Lockdown drill", is_exercise=True)

    with pytest.raises(ValidationError) as real_by_drill:
        draft_bulletin(sergeant, precinct17, title="Drill 2", is_exercise=True,
                       supersedes=[pairing_order])  # fmt: skip
    with pytest.raises(ValidationError) as drill_by_real:
        superseding_draft(sergeant, precinct17, [drill])

    assert "never replace each other" in str(real_by_drill.value)
    assert "never replace each other" in str(drill_by_real.value)
    assert Bulletin.objects.filter(title__in=["Drill 2", NEW_TITLE]).count() == 0
    assert state(pairing_order) == state(drill) == Bulletin.Status.IN_FORCE

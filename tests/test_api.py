"""The JSON API (/api/v1/), its personal tokens, its errors and its docs page."""

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bulletins.api import tokens
from bulletins.models import ApiToken, Bulletin, Receipt
from bulletins.services import authoring
from portal.models import AuditEvent
from tests.conftest import PortalClient
from tests.factories import draft_bulletin, published_bulletin

API = "/api/v1"
# Refused tokens are counted per IP in the shared cache: a fresh key prefix per test.
pytestmark = pytest.mark.usefixtures("own_cache_keys")


def bearer(secret):
    return {"authorization": f"Bearer {secret}"}


def token_for(user, **options):
    _, secret = tokens.issue_token(user, name="Integration", now=timezone.now(), **options)
    return secret


def post_json(client, url, data=None, **kwargs):
    return client.post(url, data or {}, content_type="application/json", **kwargs)


def error_of(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "field", "errors"}
    return body


# Reading


def test_bulletins_in_force_for_me_most_urgent_first_and_paginated(
    client, sergeant, officer, precinct17, precinct75, admin
):
    routine = published_bulletin(sergeant, precinct17, priority=3, title="Routine")
    urgent = published_bulletin(sergeant, precinct17, priority=1, title="Urgent")
    published_bulletin(admin, precinct75, title="Not for the 17th")
    secret = token_for(officer, is_read_only=True)

    response = client.get(f"{API}/bulletins", {"page_size": 1}, headers=bearer(secret))
    second = client.get(f"{API}/bulletins", {"page_size": 1, "page": 2}, headers=bearer(secret))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["items"]] == [urgent.pk]
    assert [item["id"] for item in second.json()["items"]] == [routine.pk]
    item = body["items"][0]
    assert item["state"] == "in_force"
    assert item["needs_my_acknowledgement"] is True
    assert item["links"]["cap"].endswith(f"/bulletins/{urgent.pk}/cap/1.xml")


def test_the_list_costs_the_same_few_queries_for_many_bulletins(
    client, sergeant, officer, precinct17, django_assert_max_num_queries
):
    for number in range(30):
        published_bulletin(sergeant, precinct17, title=f"Bulletin {number}")
    client.force_login(officer)

    with django_assert_max_num_queries(8):
        response = client.get(f"{API}/bulletins", {"page_size": 30})

    assert len(response.json()["items"]) == 30


def test_a_bulletin_with_its_versions(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    authoring.amend_bulletin(
        bulletin, by=sergeant, now=timezone.now(), reason="Both shifts", is_material=True,
        title="Pairs on both shifts",
    )  # fmt: skip
    client.force_login(officer)

    body = client.get(f"{API}/bulletins/{bulletin.pk}").json()

    assert body["title"] == "Pairs on both shifts"
    assert [v["number"] for v in body["versions"]] == [1, 2]
    assert body["versions"][1]["reason"] == "Both shifts"
    assert body["audience"] == [
        {"unit_id": precinct17.pk, "unit_name": "17th Precinct", "include_subtree": True}
    ]
    assert body["issued_by"] == sergeant.name


@pytest.mark.parametrize("how", ["session", "token"])
def test_outside_the_audience_a_bulletin_is_not_found(client, sergeant, outsider, precinct17, how):
    bulletin = published_bulletin(sergeant, precinct17)
    headers = {}
    if how == "token":
        headers = bearer(token_for(outsider, is_read_only=False))
    else:
        client.force_login(outsider)

    detail = client.get(f"{API}/bulletins/{bulletin.pk}", headers=headers)
    ack = post_json(
        client, f"{API}/bulletins/{bulletin.pk}/acknowledge", {"version": 1}, headers=headers
    )

    assert error_of(detail, HTTPStatus.NOT_FOUND)["code"] == "not_found"
    assert error_of(ack, HTTPStatus.NOT_FOUND)["code"] == "not_found"


def test_reading_intelligence_through_the_api_is_audited(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, kind="intelligence")
    client.force_login(officer)

    client.get(f"{API}/bulletins/{bulletin.pk}")

    event = AuditEvent.objects.get(action="bulletin.view_restricted", object_id=str(bulletin.pk))
    assert event.detail == {"via": "api"}


# Acknowledging


def test_acknowledge_is_idempotent(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    secret = token_for(officer, is_read_only=False)
    url = f"{API}/bulletins/{bulletin.pk}/acknowledge"

    first = post_json(client, url, {"version": 1}, headers=bearer(secret))
    second = post_json(client, url, {"version": 1}, headers=bearer(secret))

    assert first.status_code == second.status_code == HTTPStatus.OK
    assert first.json()["recorded"] is True
    assert second.json()["recorded"] is False
    assert first.json()["acknowledgement"] == second.json()["acknowledgement"]
    receipt = Receipt.objects.get(user=officer, bulletin=bulletin)
    assert receipt.auth_method.startswith("api-token:")


def test_acknowledging_through_the_api_and_the_page_records_one_receipt(
    client, sergeant, officer, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    post_json(
        client,
        f"{API}/bulletins/{bulletin.pk}/acknowledge",
        {"version": 1},
        headers=bearer(token_for(officer, is_read_only=False)),
    )
    client.force_login(officer)

    client.post(reverse("bulletins:acknowledge", args=[bulletin.pk]), {"version": 1})

    assert Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).count() == 1
    assert AuditEvent.objects.filter(action="bulletin.acknowledge", actor=officer).count() == 1


def test_a_read_only_token_cannot_acknowledge(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    secret = token_for(officer, is_read_only=True)

    response = post_json(
        client, f"{API}/bulletins/{bulletin.pk}/acknowledge", {"version": 1}, headers=bearer(secret)
    )

    assert error_of(response, HTTPStatus.FORBIDDEN)["code"] == "read_only_token"
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()


def test_acknowledging_a_changed_order_is_a_conflict(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    authoring.amend_bulletin(
        bulletin, by=sergeant, now=timezone.now(), reason="Changed", is_material=True, title="New"
    )
    client.force_login(officer)

    response = post_json(client, f"{API}/bulletins/{bulletin.pk}/acknowledge", {"version": 1})

    body = error_of(response, HTTPStatus.CONFLICT)
    assert body["code"] == "conflict"
    assert "changed" in body["message"]


def test_my_acknowledgement_history(client, sergeant, officer, auxiliary, precinct17):
    first = published_bulletin(sergeant, precinct17, title="First")
    second = published_bulletin(sergeant, precinct17, title="Second")
    for bulletin in (first, second):
        post_json(
            client,
            f"{API}/bulletins/{bulletin.pk}/acknowledge",
            {"version": 1},
            headers=bearer(token_for(officer, is_read_only=False)),
        )
    client.force_login(auxiliary)
    post_json(client, f"{API}/bulletins/{first.pk}/acknowledge", {"version": 1})
    client.force_login(officer)

    body = client.get(f"{API}/acknowledgements").json()

    assert body["count"] == 2
    assert [item["title"] for item in body["items"]] == ["Second", "First"]


# Authentication


def test_without_credentials_the_api_answers_401_in_json(client):
    response = client.get(f"{API}/bulletins")

    body = error_of(response, HTTPStatus.UNAUTHORIZED)
    assert body["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        (lambda token, now: tokens.revoke_token(token, by=token.user, now=now), "token_revoked"),
        (
            lambda token, now: ApiToken.objects.filter(pk=token.pk).update(
                created_at=now - timedelta(days=91), expires_at=now - timedelta(days=1)
            ),
            "token_expired",
        ),
    ],
    ids=["revoked", "expired"],
)
def test_revoked_and_expired_tokens_are_refused_and_audited(client, officer, spoil, code):
    now = timezone.now()
    token, secret = tokens.issue_token(officer, name="Old", now=now)
    spoil(token, now)

    response = client.get(f"{API}/bulletins", headers=bearer(secret))

    assert error_of(response, HTTPStatus.UNAUTHORIZED)["code"] == code
    event = AuditEvent.objects.get(action="api.token_use")
    assert (event.outcome, event.actor, event.detail["reason"]) == ("denied", officer, code)


def test_an_unknown_token_is_refused_and_does_not_fall_back_to_the_session(client, officer):
    client.force_login(officer)

    response = client.get(f"{API}/bulletins", headers=bearer("not-a-token"))

    assert error_of(response, HTTPStatus.UNAUTHORIZED)["code"] == "token_unknown"


def test_a_token_of_a_deactivated_person_is_refused(client, officer):
    secret = token_for(officer)
    officer.is_active = False
    officer.save()

    response = client.get(f"{API}/bulletins", headers=bearer(secret))

    assert error_of(response, HTTPStatus.UNAUTHORIZED)["code"] == "token_inactive"


def test_token_use_is_audited_at_most_once_a_minute(client, officer):
    token, secret = tokens.issue_token(officer, name="Board", now=timezone.now())

    client.get(f"{API}/bulletins", headers=bearer(secret))
    client.get(f"{API}/bulletins", headers=bearer(secret))

    token.refresh_from_db()
    assert token.last_used_at is not None
    assert AuditEvent.objects.filter(action="api.token_use", outcome="success").count() == 1


def test_a_session_needs_csrf_to_change_something_and_a_token_does_not(
    sergeant, officer, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    url = f"{API}/bulletins/{bulletin.pk}/acknowledge"
    browser = PortalClient(enforce_csrf_checks=True)  # signed in with MFA, as everyone must
    browser.force_login(officer)
    machine = Client(enforce_csrf_checks=True)

    by_session = post_json(browser, url, {"version": 1})
    by_token = post_json(
        machine, url, {"version": 1}, headers=bearer(token_for(officer, is_read_only=False))
    )

    assert error_of(by_session, HTTPStatus.FORBIDDEN)["code"] == "csrf_failed"
    assert by_token.status_code == HTTPStatus.OK


# Authoring


def draft_payload(units, **changes):
    payload = {
        "title": "No solo posts",
        "instruction": "Work in pairs.",
        "body": "Until further notice.",
        "kind": "order",
        "priority": 1,
        "audience": [{"unit_id": unit.pk, "include_subtree": True} for unit in units],
        "until_further_notice": True,
    }
    payload.update(changes)
    return payload


def test_a_supervisor_drafts_publishes_amends_and_lifts_through_the_api(
    client, sergeant, officer, precinct17
):
    headers = bearer(token_for(sergeant, is_read_only=False))

    created = post_json(client, f"{API}/bulletins", draft_payload([precinct17]), headers=headers)
    pk = created.json()["id"]
    published = post_json(client, f"{API}/bulletins/{pk}/publish", headers=headers)
    amended = post_json(
        client,
        f"{API}/bulletins/{pk}/amend",
        {"reason": "Both shifts", "is_material": True, "title": "No solo posts, both shifts"},
        headers=headers,
    )
    lifted = post_json(client, f"{API}/bulletins/{pk}/lift", {"reason": "Over"}, headers=headers)

    assert created.status_code == HTTPStatus.CREATED
    assert created.json()["state"] == "draft"
    assert published.json()["state"] == "in_force"
    assert amended.json()["version"] == amended.json()["ack_version"] == 2
    assert amended.json()["expires_at"] is None
    assert lifted.json()["state"] == "lifted"
    assert lifted.json()["links"]["cap_cancel"].endswith(f"/bulletins/{pk}/cap/cancel.xml")
    bulletin = Bulletin.objects.get(pk=pk)
    assert (bulletin.issued_by, bulletin.lifted_by, bulletin.lift_reason) == (
        sergeant,
        sergeant,
        "Over",
    )


def test_a_lift_can_be_scheduled(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)
    at = timezone.now() + timedelta(hours=6)

    response = post_json(
        client,
        f"{API}/bulletins/{bulletin.pk}/lift",
        {"reason": "Morning", "lift_at": at.isoformat()},
    )

    assert response.json()["state"] == "in_force"
    assert response.json()["expires_at"] is not None


def test_validation_errors_name_the_field(client, settings, sergeant, precinct17, precinct75):
    settings.APPROVAL_REQUIRED_FOR = "none"  # else he may write beyond his command (approval)
    client.force_login(sergeant)

    no_end = post_json(
        client, f"{API}/bulletins", draft_payload([precinct17], until_further_notice=False)
    )
    outside = post_json(client, f"{API}/bulletins", draft_payload([precinct75]))
    no_title = post_json(client, f"{API}/bulletins", draft_payload([precinct17], title=""))
    no_class = post_json(
        client,
        f"{API}/bulletins",
        draft_payload([precinct17], to_sworn=False, to_auxiliary=False, to_civilian=False),
    )

    assert error_of(no_end, 422)["field"] == "expires_at"
    assert error_of(outside, 422)["field"] == "audience"
    assert error_of(no_title, 422)["field"] == "title"
    assert error_of(no_class, 422)["field"] == "to_sworn"
    assert not Bulletin.objects.exists()


def test_a_lift_without_a_reason_names_the_field(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    client.force_login(sergeant)

    response = post_json(client, f"{API}/bulletins/{bulletin.pk}/lift", {"reason": ""})

    body = error_of(response, 422)
    assert (body["code"], body["field"]) == ("validation_error", "reason")


def test_amending_a_lifted_bulletin_is_a_conflict(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Over")
    client.force_login(sergeant)

    response = post_json(
        client, f"{API}/bulletins/{bulletin.pk}/amend", {"reason": "Late", "is_material": False}
    )

    assert error_of(response, HTTPStatus.CONFLICT)["code"] == "conflict"


@pytest.mark.parametrize(
    ("persona", "create", "publish"),
    [
        ("officer", HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND),
        ("outsider", HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND),
        ("sergeant", HTTPStatus.CREATED, HTTPStatus.OK),
        ("admin", HTTPStatus.CREATED, HTTPStatus.OK),
    ],
)
def test_authoring_permission_matrix(
    request, client, sergeant, precinct17, persona, create, publish
):
    draft = draft_bulletin(sergeant, precinct17)
    client.force_login(request.getfixturevalue(persona))

    created = post_json(client, f"{API}/bulletins", draft_payload([precinct17]))
    published = post_json(client, f"{API}/bulletins/{draft.pk}/publish")

    assert created.status_code == create
    assert published.status_code == publish


def test_coverage_figures_for_a_supervisor_and_not_for_an_officer(
    client, sergeant, officer, auxiliary, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17)
    post_json(
        client,
        f"{API}/bulletins/{bulletin.pk}/acknowledge",
        {"version": 1},
        headers=bearer(token_for(officer, is_read_only=False)),
    )

    figures = client.get(
        f"{API}/bulletins/{bulletin.pk}/coverage", headers=bearer(token_for(sergeant))
    )
    refused = client.get(
        f"{API}/bulletins/{bulletin.pk}/coverage", headers=bearer(token_for(officer))
    )

    assert figures.status_code == HTTPStatus.OK
    assert figures.json()["acknowledged"] == 2  # and the sergeant, who issued it
    assert figures.json()["audience"] == 3
    assert refused.status_code == HTTPStatus.NOT_FOUND


# Token page


def test_a_new_token_is_shown_once_and_stored_hashed(client, officer):
    client.force_login(officer)

    response = client.post(
        reverse("bulletins:tokens"),
        {"name": "Car laptop", "lifetime_days": 90, "is_read_only": "on"},
    )
    listing = client.get(reverse("bulletins:tokens")).content.decode()

    secret = re.search(r'<code class="token-secret">([^<]+)</code>', response.content.decode())[1]
    token = ApiToken.objects.get(user=officer)
    assert token.secret_hash == ApiToken.hash_secret(secret)
    assert secret not in listing
    assert token.prefix == secret[:8] and token.prefix in listing
    assert token.is_read_only
    assert token.expires_at - token.created_at == timedelta(days=90)
    assert AuditEvent.objects.filter(action="api.token_create", actor=officer).count() == 1


def test_a_token_without_a_name_is_refused(client, officer):
    client.force_login(officer)

    response = client.post(reverse("bulletins:tokens"), {"name": "", "lifetime_days": 90})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not ApiToken.objects.exists()


def test_a_person_revokes_their_own_token_only(client, officer, auxiliary):
    mine, _ = tokens.issue_token(officer, name="Mine", now=timezone.now())
    theirs, _ = tokens.issue_token(auxiliary, name="Theirs", now=timezone.now())
    client.force_login(officer)

    client.post(reverse("bulletins:token_revoke", args=[mine.pk]))
    other = client.post(reverse("bulletins:token_revoke", args=[theirs.pk]))

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None
    assert other.status_code == HTTPStatus.NOT_FOUND
    assert theirs.revoked_at is None
    assert AuditEvent.objects.filter(action="api.token_revoke").count() == 1


# Schema and docs


def test_the_schema_is_served_to_a_signed_in_caller_only(client, officer):
    anonymous = client.get("/api/schema/")
    with_token = client.get("/api/schema/", headers=bearer(token_for(officer, is_read_only=True)))

    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    schema = with_token.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/bulletins/{bulletin_id}/acknowledge" in schema["paths"]


def test_the_docs_page_loads_nothing_from_another_site(client, officer):
    client.force_login(officer)

    page = client.get("/api/docs/").content.decode()

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert all(source.startswith("/api/docs/assets/") for source in sources)
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == HTTPStatus.OK
        assert asset.getvalue()

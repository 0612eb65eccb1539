"""Issue 18, points 3, 4 and 15: the API asks a session for a recent sign-in where the pages do;
API tokens are short-lived, read-only by default and bound to what their owner was when they
were made; refused tokens are limited and audited per IP and minute."""

import datetime as dt
import importlib
from http import HTTPStatus

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from bulletins.api import tasks, tokens
from bulletins.models import ApiToken, Bulletin
from portal.models import AuditEvent, User
from portal.scope import AUTHOR, VIEW_COVERAGE
from tests.factories import PASSWORD, UserFactory, draft_bulletin, published_bulletin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]

API = "/api/v1"
# Five seconds into a minute: a test's requests all fall in one rate-limit window.
START = dt.datetime(2026, 12, 4, 14, 40, 5, tzinfo=dt.UTC)


def bearer(secret):
    return {"authorization": f"Bearer {secret}"}


def issue(user, **options):
    return tokens.issue_token(user, name="Integration", now=timezone.now(), **options)


def post_json(client, url, data=None, **kwargs):
    return client.post(url, data or {}, content_type="application/json", **kwargs)


@pytest.fixture
def auditor(agency):
    return UserFactory(email="auditor@agency.test", unit=agency, role=User.Role.AUDITOR)


# 3. Session writes want the pages' recent sign-in


def test_a_session_signed_in_20_minutes_ago_cannot_publish_or_lift_through_the_api(
    client, sergeant, precinct17
):
    draft = draft_bulletin(sergeant, precinct17)
    in_force = published_bulletin(sergeant, precinct17)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(sergeant)
        traveller.shift(dt.timedelta(minutes=20))

        publish = post_json(client, f"{API}/bulletins/{draft.pk}/publish")
        lift = post_json(client, f"{API}/bulletins/{in_force.pk}/lift", {"reason": "Over"})

    for response in (publish, lift):
        assert response.status_code == HTTPStatus.FORBIDDEN
        body = response.json()
        assert body["code"] == "reauthentication_required"
        assert "Sign in again" in body["message"]
        assert reverse("account_reauthenticate") in body["message"]
    draft.refresh_from_db()
    in_force.refresh_from_db()
    assert draft.status == Bulletin.Status.DRAFT
    assert in_force.status == Bulletin.Status.IN_FORCE


def test_after_re_authenticating_the_session_publishes_through_the_api(
    client, sergeant, precinct17
):
    draft = draft_bulletin(sergeant, precinct17)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(sergeant)
        traveller.shift(dt.timedelta(minutes=20))
        refused = post_json(client, f"{API}/bulletins/{draft.pk}/publish")

        client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
        published = post_json(client, f"{API}/bulletins/{draft.pk}/publish")

    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert published.status_code == HTTPStatus.OK
    assert published.json()["state"] == "in_force"


def test_a_session_drafts_and_amends_without_a_recent_sign_in_as_the_pages_do(
    client, sergeant, precinct17
):
    in_force = published_bulletin(sergeant, precinct17)
    payload = {
        "title": "No solo posts",
        "instruction": "Work in pairs.",
        "body": "Until further notice.",
        "kind": "order",
        "priority": 1,
        "audience": [{"unit_id": precinct17.pk, "include_subtree": True}],
        "until_further_notice": True,
    }
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(sergeant)
        traveller.shift(dt.timedelta(minutes=20))

        created = post_json(client, f"{API}/bulletins", payload)
        amended = post_json(
            client,
            f"{API}/bulletins/{in_force.pk}/amend",
            {"reason": "Typo", "is_material": False, "instruction": "Work in pairs. No solo post."},
        )

    assert created.status_code == HTTPStatus.CREATED
    assert amended.status_code == HTTPStatus.OK


def test_a_writing_token_publishes_on_its_own_rights_without_a_sign_in(
    client, sergeant, precinct17
):
    draft = draft_bulletin(sergeant, precinct17)
    _, secret = issue(sergeant, is_read_only=False)

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=20)):
        response = post_json(client, f"{API}/bulletins/{draft.pk}/publish", headers=bearer(secret))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["state"] == "in_force"


# 4. Tokens: a fresh sign-in to make one, 90 days, read-only by default, bound to their owner


def test_making_a_token_wants_a_recent_sign_in(client, officer):
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        client.force_login(officer)
        traveller.shift(dt.timedelta(minutes=6))

        page = client.get(reverse("bulletins:tokens"))
        posted = client.post(reverse("bulletins:tokens"), {"name": "Board", "lifetime_days": 30})
        not_yet = ApiToken.objects.exists()
        resumed = client.post(posted.url, {"password": PASSWORD})

    assert page.status_code == HTTPStatus.OK
    assert posted.url.startswith(reverse("account_reauthenticate"))
    assert not not_yet
    assert resumed.status_code == HTTPStatus.OK
    assert ApiToken.objects.get(user=officer).name == "Board"


def test_a_token_from_the_page_is_read_only_unless_changes_are_allowed(client, sergeant):
    client.force_login(sergeant)

    client.post(reverse("bulletins:tokens"), {"name": "Reader", "lifetime_days": 90})
    client.post(
        reverse("bulletins:tokens"), {"name": "Writer", "lifetime_days": 90, "can_write": "on"}
    )

    made = dict(ApiToken.objects.values_list("name", "is_read_only"))
    assert made == {"Reader": True, "Writer": False}
    token, _ = issue(sergeant)
    assert token.is_read_only


def test_a_token_lasts_at_most_90_days(client, officer):
    client.force_login(officer)

    page = client.post(reverse("bulletins:tokens"), {"name": "Forever", "lifetime_days": 365})
    with pytest.raises(ValidationError) as refused:
        issue(officer, lifetime=dt.timedelta(days=91))

    assert page.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert refused.value.message_dict == {"lifetime": ["A token lasts at most 90 days."]}
    assert not ApiToken.objects.exists()
    token, _ = issue(officer, lifetime=dt.timedelta(days=90))
    assert token.expires_at - token.created_at == dt.timedelta(days=90)


def test_a_read_only_role_makes_read_only_tokens_only(client, auditor):
    client.force_login(auditor)

    page = client.get(reverse("bulletins:tokens")).content.decode()
    client.post(
        reverse("bulletins:tokens"), {"name": "Sneaky", "lifetime_days": 30, "can_write": "on"}
    )
    with pytest.raises(ValidationError) as refused:
        issue(auditor, is_read_only=False)

    assert "Allow changes" not in page
    assert ApiToken.objects.get(user=auditor).is_read_only
    assert "is_read_only" in refused.value.message_dict


def test_a_token_records_its_owner_s_rights_when_it_is_made(sergeant):
    token, _ = issue(sergeant)

    assert token.capabilities == sorted([AUTHOR, VIEW_COVERAGE])
    assert token.owner_fingerprint == ApiToken.fingerprint_of(sergeant)
    event = AuditEvent.objects.get(action="api.token_create")
    assert event.detail["capabilities"] == token.capabilities
    assert event.detail["read_only"] is True


def _change_password(person):
    person.set_password("a brand new passphrase 2026")
    person.save()


def _change_role(person):
    person.role = User.Role.SUPERVISOR
    person.save()


def _make_superuser(person):
    person.is_superuser = True
    person.save()


@pytest.mark.parametrize(
    "change",
    [_change_password, _change_role, _make_superuser],
    ids=["password", "role", "superuser"],
)
def test_a_token_stops_working_when_its_owner_s_password_or_role_changes(client, officer, change):
    _, secret = issue(officer)
    before = client.get(f"{API}/bulletins", headers=bearer(secret))

    change(officer)
    after = client.get(f"{API}/bulletins", headers=bearer(secret))

    assert before.status_code == HTTPStatus.OK
    assert after.status_code == HTTPStatus.UNAUTHORIZED
    assert after.json()["code"] == "token_stale"
    denied = AuditEvent.objects.get(action="api.token_use", outcome="denied")
    assert (denied.actor, denied.detail["reason"]) == (officer, "token_stale")


def test_the_token_page_shows_a_token_that_stopped_working(client, officer):
    issue(officer)
    _change_password(officer)
    client.force_login(officer)

    page = client.get(reverse("bulletins:tokens")).content.decode()

    assert "Stopped: your password or role changed" in page


def test_a_token_of_a_deactivated_account_stops_working_on_feeds_too(client, officer):
    _, secret = issue(officer)
    officer.is_active = False
    officer.save()

    api = client.get(f"{API}/bulletins", headers=bearer(secret))
    feed = client.get(reverse("bulletins:cap_feed"), headers=bearer(secret))

    assert api.json()["code"] == "token_inactive"
    assert feed.status_code == HTTPStatus.UNAUTHORIZED


def test_a_token_acts_with_no_right_it_was_not_issued_with(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    token, secret = issue(sergeant, is_read_only=False)
    # Issued when the supervisor's rights did not include authoring (an older token, or the
    # role gained the capability since): the role grants it today, the token still does not.
    ApiToken.objects.filter(pk=token.pk).update(capabilities=[VIEW_COVERAGE])
    payload = {
        "title": "No solo posts",
        "instruction": "Work in pairs.",
        "body": "Until further notice.",
        "kind": "order",
        "priority": 1,
        "audience": [{"unit_id": precinct17.pk, "include_subtree": True}],
        "until_further_notice": True,
    }

    created = post_json(client, f"{API}/bulletins", payload, headers=bearer(secret))
    lifted = post_json(
        client, f"{API}/bulletins/{bulletin.pk}/lift", {"reason": "Over"}, headers=bearer(secret)
    )
    coverage = client.get(f"{API}/bulletins/{bulletin.pk}/coverage", headers=bearer(secret))

    assert created.status_code == HTTPStatus.FORBIDDEN
    assert lifted.status_code == HTTPStatus.NOT_FOUND
    assert coverage.status_code == HTTPStatus.OK
    assert not Bulletin.objects.exclude(pk=bulletin.pk).exists()


def test_a_token_gains_no_permission_granted_later_and_loses_one_taken_away(officer):
    people = Permission.objects.get(codename="manage_people")
    audit = Permission.objects.get(codename="view_audit_trail")
    held_then = Group.objects.create(name="Roster clerks")
    held_then.permissions.add(people)
    officer.groups.add(held_then)
    _, secret = issue(User.objects.get(pk=officer.pk))
    later = Group.objects.create(name="Auditors")
    later.permissions.add(audit)
    officer.groups.add(later)
    officer.groups.remove(held_then)

    acting = tokens.authenticate_token(secret, now=timezone.now()).user

    fresh = User.objects.get(pk=officer.pk)
    assert fresh.has_perm("portal.view_audit_trail")
    assert not acting.has_perm("portal.view_audit_trail")
    assert not acting.has_perm("portal.manage_people")


def test_existing_tokens_get_a_careful_default_from_the_migration(client, sergeant, capsys):
    now = timezone.now()
    token, secret = issue(sergeant, is_read_only=False)
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=now + dt.timedelta(days=365), capabilities=[], owner_fingerprint=""
    )
    migration = importlib.import_module("bulletins.migrations.0009_api_tokens_carry_their_rights")

    migration.give_existing_tokens_a_careful_default(apps, None)

    token.refresh_from_db()
    assert token.is_read_only
    assert token.expires_at <= timezone.now() + dt.timedelta(days=90)
    assert token.capabilities == sorted([AUTHOR, VIEW_COVERAGE])
    assert "1 made read-only, 1 now expire within 90 days" in capsys.readouterr().out
    assert client.get(f"{API}/bulletins", headers=bearer(secret)).status_code == HTTPStatus.OK


# 15. Refused tokens: limited per IP, audited once per IP and minute with a count


@pytest.fixture
def window_start():
    with time_machine.travel(START, tick=False):
        yield START


def test_refused_tokens_from_one_ip_are_answered_429_once_over_the_limit(
    client, officer, settings, window_start
):
    settings.API_TOKEN_REFUSALS_PER_MINUTE = 3
    _, good = issue(officer)
    from_a = {"REMOTE_ADDR": "198.51.100.7"}

    refused = [
        client.get(f"{API}/bulletins", headers=bearer(f"guess-{n}"), **from_a) for n in range(3)
    ]
    limited = client.get(f"{API}/bulletins", headers=bearer("guess-4"), **from_a)
    good_from_a = client.get(f"{API}/bulletins", headers=bearer(good), **from_a)
    feed_from_a = client.get(reverse("bulletins:cap_feed"), headers=bearer("guess-5"), **from_a)
    from_b = client.get(f"{API}/bulletins", headers=bearer("guess-6"), REMOTE_ADDR="203.0.113.9")

    assert [r.status_code for r in refused] == [HTTPStatus.UNAUTHORIZED] * 3
    assert limited.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert limited.json()["code"] == "too_many_requests"
    assert limited["Retry-After"] == "55"
    assert good_from_a.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert feed_from_a.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert feed_from_a["Retry-After"] == "55"
    assert from_b.status_code == HTTPStatus.UNAUTHORIZED


def test_unknown_tokens_are_audited_once_per_ip_and_minute_with_a_count(
    client, window_start, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as summaries:
        for n in range(5):
            client.get(f"{API}/bulletins", headers=bearer(f"guess-{n}"), REMOTE_ADDR="198.51.100.7")
        for n in range(2):
            client.get(f"{API}/bulletins", headers=bearer(f"guess-{n}"), REMOTE_ADDR="203.0.113.9")
    during_the_minute = AuditEvent.objects.filter(action__startswith="api.token").count()
    window = tokens.refusal_window(window_start)

    with time_machine.travel(window_start + dt.timedelta(minutes=1), tick=False):
        tasks.record_token_refusals_task.apply(("198.51.100.7", window))
        tasks.record_token_refusals_task.apply(("198.51.100.7", window))  # redelivered
        tokens.record_refusals("203.0.113.9", window, now=timezone.now())

    assert len(summaries) == 2
    assert during_the_minute == 0
    events = AuditEvent.objects.filter(action="api.token_refused").order_by("ip")
    assert [(event.ip, event.detail["count"]) for event in events] == [
        ("198.51.100.7", 5),
        ("203.0.113.9", 2),
    ]
    assert {event.detail["minute"] for event in events} == {"2026-12-04T14:40:00+00:00"}
    assert {event.outcome for event in events} == {"denied"}

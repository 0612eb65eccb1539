"""Answering back: "I cannot comply" (up the chain until resolved) and "Implemented"."""

import hashlib
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from bulletins import notifications
from bulletins.api import tokens
from bulletins.models import (
    AgencyPolicy,
    Bulletin,
    CannotComplyReason,
    Notification,
    NotificationEvent,
    Recipient,
    Response,
    ResponseEscalation,
)
from bulletins.services import authoring, clock, responses
from portal.models import AuditEvent, Unit, User
from tests.factories import UserFactory, draft_bulletin, make_unit, published_bulletin

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]

Event = NotificationEvent.Event
API = "/api/v1"
DELAY = timedelta(minutes=settings.REMINDER_DELAY_MINUTES[1])


@pytest.fixture
def reasons(agency):
    labels = ["No partner available", "Equipment missing", "Other"]
    return {
        label: CannotComplyReason.objects.create(agency=agency, label=label, position=position)
        for position, label in enumerate(labels)
    }


@pytest.fixture
def order(sergeant, officer, precinct17):
    return published_bulletin(sergeant, precinct17, priority=1)


def answer(order, officer, reasons, *, now=None, label="No partner available", detail="", **kw):
    return responses.cannot_comply(
        order, user=officer, reason=reasons[label], detail=detail, now=now or timezone.now(), **kw
    )


def nothing_saved():
    return (
        not Response.objects.exists()
        and not NotificationEvent.objects.filter(event=Event.CANNOT_COMPLY).exists()
    )


# Cannot comply: the record, the outbox, the refusals


def test_cannot_comply_records_evidence_audits_and_queues_the_supervisors_message_on_commit(
    order, officer, reasons, django_capture_on_commit_callbacks
):
    request = RequestFactory().post("/", HTTP_USER_AGENT="Patrol laptop", REMOTE_ADDR="10.1.2.3")
    request.user = officer
    now = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        response = answer(order, officer, reasons, now=now, detail="Partner out sick",
                          request=request)  # fmt: skip

    statement = AgencyPolicy.DEFAULT_STATEMENT.encode()
    assert response.kind == Response.Kind.CANNOT_COMPLY
    assert (response.version.number, response.unit, response.reason_label) == (
        1, officer.unit, "No partner available",
    )  # fmt: skip
    assert response.detail == "Partner out sick"
    assert response.statement_hash == hashlib.sha256(statement).hexdigest()
    assert (response.ip, response.user_agent) == ("10.1.2.3", "Patrol laptop")
    assert response.auth_method == "session"
    assert response.created_at == now and response.is_open
    event = AuditEvent.objects.get(action="bulletin.cannot_comply")
    assert (event.actor, event.object_id, event.detail["response"]) == (
        officer, str(order.pk), response.pk,
    )  # fmt: skip
    outbox = NotificationEvent.objects.get(event=Event.CANNOT_COMPLY)
    assert (outbox.key, outbox.detail) == (f"r{response.pk}", {"response": response.pk})
    assert len(callbacks) >= 1  # delivered right after commit, not at the next sweep


def test_cannot_comply_is_not_an_acknowledgement(order, officer, reasons):
    answer(order, officer, reasons)

    recipient = Recipient.objects.get(bulletin=order, user=officer)
    assert recipient.acknowledged_version is None


def test_the_statement_hash_follows_the_versions_own_statement(order, officer, reasons):
    order.versions.filter(number=1).update(statement="I will not patrol alone.")

    response = answer(order, officer, reasons)

    assert response.statement_hash == hashlib.sha256(b"I will not patrol alone.").hexdigest()


def test_without_its_own_statement_the_hash_is_of_the_agencys_default(
    order, officer, reasons, agency
):
    AgencyPolicy.objects.create(agency=agency, statement="Read, understood, will comply.")

    response = answer(order, officer, reasons)

    assert response.statement_hash == hashlib.sha256(b"Read, understood, will comply.").hexdigest()


def test_the_same_answer_twice_is_recorded_once(order, officer, reasons):
    first = answer(order, officer, reasons, detail="Nobody free")
    second = answer(order, officer, reasons, detail="Nobody free")

    assert first.pk == second.pk
    assert Response.objects.count() == 1
    assert NotificationEvent.objects.filter(event=Event.CANNOT_COMPLY).count() == 1


@pytest.mark.parametrize(
    ("reason", "detail", "field"),
    [
        (None, "", "reason"),
        ("", "", "reason"),
        ("No partner available", "x" * 10_000, "detail"),
        ("Other", "", "detail"),
        ("Other", "   ", "detail"),
    ],
)
def test_bad_answers_are_refused_with_a_field_error_and_nothing_saved(
    order, officer, reasons, reason, detail, field
):
    with pytest.raises(ValidationError) as refused:
        responses.cannot_comply(
            order, user=officer, reason=reasons.get(reason, reason), detail=detail,
            now=timezone.now(),
        )  # fmt: skip

    assert field in refused.value.message_dict
    assert nothing_saved()


def test_a_reason_of_another_agency_or_archived_is_refused(order, officer, reasons):
    other = make_unit("Nassau County Police", kind=Unit.Kind.AGENCY)
    theirs = CannotComplyReason.objects.create(agency=other, label="No partner available")
    reasons["Equipment missing"].is_archived = True
    reasons["Equipment missing"].save()

    for reason in (theirs, reasons["Equipment missing"], theirs.pk, "not a number"):
        with pytest.raises(ValidationError) as refused:
            responses.cannot_comply(order, user=officer, reason=reason, detail="",
                                    now=timezone.now())  # fmt: skip
        assert "reason" in refused.value.message_dict
    assert nothing_saved()


def test_other_with_details_is_accepted(order, officer, reasons):
    response = answer(order, officer, reasons, label="Other", detail="Radio dead")

    assert (response.reason_label, response.detail) == ("Other", "Radio dead")


def test_only_an_order_in_force_addressed_to_the_person_is_answered(
    sergeant, officer, outsider, precinct17, reasons
):
    now = timezone.now()
    advisory = published_bulletin(sergeant, precinct17, kind="advisory")
    ended = published_bulletin(sergeant, precinct17, title="Ended")
    authoring.lift_bulletin(ended, by=sergeant, now=now, reason="Over")
    draft = draft_bulletin(sergeant, precinct17)
    order = published_bulletin(sergeant, precinct17)

    for bulletin in (advisory, ended):
        with pytest.raises(ValidationError):
            answer(bulletin, officer, reasons, now=now)
    for bulletin, person in ((draft, officer), (order, outsider)):
        with pytest.raises(Bulletin.DoesNotExist):
            answer(bulletin, person, reasons, now=now)
    assert nothing_saved()


# Implemented


@pytest.mark.parametrize(
    ("implemented_from", "officer_asked", "sergeant_asked"),
    [
        ("", False, False),
        ("everyone", True, True),
        ("supervisors", False, True),
        ("units", False, True),
    ],
)
def test_who_must_report_implemented(
    sergeant, officer, precinct17, implemented_from, officer_asked, sergeant_asked
):
    order = published_bulletin(sergeant, precinct17, implemented_from=implemented_from)
    advisory = published_bulletin(
        sergeant, precinct17, kind="advisory", implemented_from=implemented_from
    )

    assert responses.must_report_implemented(order, officer) is officer_asked
    assert responses.must_report_implemented(order, sergeant) is sergeant_asked
    assert responses.must_report_implemented(advisory, sergeant) is False


def test_report_implemented_once_per_person_and_version(sergeant, precinct17):
    order = published_bulletin(sergeant, precinct17, implemented_from="units")

    first = responses.report_implemented(
        order, user=sergeant, note="Armed officer posted", now=timezone.now()
    )
    again = responses.report_implemented(order, user=sergeant, note="", now=timezone.now())

    assert first.pk == again.pk
    assert (first.kind, first.detail, first.unit) == ("implemented", "Armed officer posted",
                                                       sergeant.unit)  # fmt: skip
    assert AuditEvent.objects.filter(action="bulletin.implemented").count() == 1


def test_report_implemented_is_refused_when_not_asked_or_too_long(sergeant, officer, precinct17):
    order = published_bulletin(sergeant, precinct17, implemented_from="supervisors")

    with pytest.raises(ValidationError):
        responses.report_implemented(order, user=officer, note="", now=timezone.now())
    with pytest.raises(ValidationError) as refused:
        responses.report_implemented(order, user=sergeant, note="x" * 2001, now=timezone.now())

    assert "note" in refused.value.message_dict
    assert not Response.objects.exists()


# Resolving


def test_who_may_resolve(order, officer, sergeant, admin, outsider, sergeant75, reasons):
    response = answer(order, officer, reasons)

    assert responses.can_resolve(sergeant, response)
    assert responses.can_resolve(admin, response)
    assert not responses.can_resolve(officer, response)
    assert not responses.can_resolve(outsider, response)
    assert not responses.can_resolve(sergeant75, response)


def test_resolve_records_audits_tells_the_officer_and_happens_once(
    order, officer, sergeant, admin, reasons
):
    response = answer(order, officer, reasons)
    now = timezone.now()

    responses.resolve(response, by=sergeant, resolution="Paired with P.O. Diaz at 08:40", now=now)
    with pytest.raises(ValidationError, match="Already resolved by Sgt. Dan Kowalski at"):
        responses.resolve(response, by=admin, resolution="Me too", now=now)

    response.refresh_from_db()
    assert (response.resolved_by, response.resolved_at) == (sergeant, now)
    assert response.resolution == "Paired with P.O. Diaz at 08:40"
    assert not responses.open_cannot_comply(order).exists()
    assert AuditEvent.objects.filter(action="bulletin.cannot_comply_resolved").count() == 1
    outbox = NotificationEvent.objects.get(event=Event.CANNOT_COMPLY_RESOLVED)
    assert list(notifications.addressees(outbox)) == [officer]


def test_resolve_refuses_outside_scope_and_an_empty_resolution(
    order, officer, sergeant, sergeant75, reasons
):
    response = answer(order, officer, reasons)

    with pytest.raises(PermissionDenied):
        responses.resolve(response, by=sergeant75, resolution="Not mine", now=timezone.now())
    with pytest.raises(ValidationError) as refused:
        responses.resolve(response, by=sergeant, resolution="  ", now=timezone.now())

    assert "resolution" in refused.value.message_dict
    assert responses.open_cannot_comply(order).get() == response


# Who is told


def test_the_supervisors_of_the_unit_hear_whatever_their_email_preference(
    order, officer, sergeant, admin, reasons
):
    sergeant.wants_email = False
    sergeant.save()
    UserFactory(email="off-duty@agency.test", unit=sergeant.unit, role=User.Role.SUPERVISOR,
                is_active=False)  # fmt: skip

    answer(order, officer, reasons)

    outbox = NotificationEvent.objects.get(event=Event.CANNOT_COMPLY)
    assert list(notifications.addressees(outbox)) == [sergeant]


def test_without_supervisors_in_the_unit_the_nearest_unit_above_with_some_hears(
    admin, squad_officer, precinct17, reasons
):
    lieutenant = UserFactory(email="lt@agency.test", unit=precinct17, role=User.Role.SUPERVISOR)
    order = published_bulletin(admin, precinct17)

    answer(order, squad_officer, reasons)

    outbox = NotificationEvent.objects.get(event=Event.CANNOT_COMPLY)
    assert list(notifications.addressees(outbox)) == [lieutenant]


def test_the_supervisors_email_names_the_officer_reason_detail_and_resolve_page(
    order, officer, sergeant, reasons
):
    response = answer(order, officer, reasons, detail="All officers paired, 1 short")
    outbox = NotificationEvent.objects.get(event=Event.CANNOT_COMPLY)
    notifications.fan_out(outbox)

    notifications.send_pending()

    (message,) = mail.outbox
    assert message.to == [sergeant.email]
    assert message.subject.startswith(
        "Cannot comply: Maria Lopez - No partner available - All officers paired"
    )
    assert "All officers paired, 1 short" in message.body
    assert "17th Precinct" in message.body
    assert reverse("bulletins:resolve", args=[response.pk]) in message.body
    assert reverse("bulletins:coverage", args=[order.pk]) in message.body


# Escalation on the clock


def escalations(response):
    return list(
        ResponseEscalation.objects.filter(response=response)
        .order_by("step")
        .values_list("step", "unit__name")
    )


def test_an_unresolved_answer_goes_up_the_chain_at_the_escalation_cadence(
    order, officer, reasons, admin
):
    t0 = order.effective_at
    response = answer(order, officer, reasons, now=t0)

    clock.sweep(t0 + DELAY - timedelta(seconds=1))
    before = escalations(response)
    clock.sweep(t0 + DELAY)
    clock.sweep(t0 + DELAY + timedelta(seconds=30))  # twice = once
    first = escalations(response)
    clock.sweep(t0 + 2 * DELAY)
    second = escalations(response)
    clock.sweep(t0 + 3 * DELAY)  # the agency is the top: nothing above it

    assert before == []
    assert first == [(1, "Manhattan South")]
    assert second == [(1, "Manhattan South"), (2, "Metro Police Department")]
    assert escalations(response) == second
    events = NotificationEvent.objects.filter(event=Event.CANNOT_COMPLY_ESCALATED)
    assert sorted(events.values_list("key", flat=True)) == [
        f"r{response.pk}s1", f"r{response.pk}s2",
    ]  # fmt: skip
    top = events.get(key=f"r{response.pk}s2")
    assert list(notifications.addressees(top)) == [admin]
    assert AuditEvent.objects.filter(action="bulletin.cannot_comply_escalated").count() == 2


def test_escalation_stops_once_resolved_or_when_the_order_ends(
    sergeant, officer, precinct17, reasons
):
    t0 = timezone.now()
    resolved_order = published_bulletin(sergeant, precinct17, now=t0, priority=1, title="One")
    lifted_order = published_bulletin(sergeant, precinct17, now=t0, priority=1, title="Two")
    resolved = answer(resolved_order, officer, reasons, now=t0)
    lifted = answer(lifted_order, officer, reasons, now=t0)
    responses.resolve(resolved, by=sergeant, resolution="Paired", now=t0 + DELAY / 2)
    authoring.lift_bulletin(lifted_order, by=sergeant, now=t0 + DELAY / 2, reason="Over")

    written = responses.sweep_cannot_comply(t0 + 3 * DELAY)

    assert written == 0
    assert escalations(resolved) == escalations(lifted) == []


def test_the_escalation_sweep_reads_once_and_writes_a_few_rows_per_step(
    django_assert_max_num_queries, admin, agency, precinct17, reasons
):
    t0 = timezone.now()
    order = published_bulletin(admin, agency, now=t0, priority=1)
    people = UserFactory.create_batch(30, unit=precinct17)
    for person in people:
        answer(order, person, reasons, now=t0)

    # Per step: the audit event and the outbox row (get_or_create in a savepoint), no reads.
    with django_assert_max_num_queries(8 + 5 * len(people)):
        written = responses.sweep_cannot_comply(t0 + DELAY)

    assert written == len(people)


# Pages


def test_every_order_offers_i_cannot_comply_and_nothing_else_does(
    client, sergeant, officer, precinct17, reasons
):
    order = published_bulletin(sergeant, precinct17, implemented_from="")
    advisory = published_bulletin(sergeant, precinct17, kind="advisory")
    client.force_login(officer)
    form_url = reverse("bulletins:cannot_comply", args=[order.pk])

    order_page = client.get(reverse("bulletins:detail", args=[order.pk])).content.decode()
    advisory_page = client.get(reverse("bulletins:detail", args=[advisory.pk])).content.decode()
    form = client.get(form_url).content.decode()

    assert f'href="{form_url}"' in order_page and "I cannot comply" in order_page
    assert "I cannot comply" not in advisory_page
    assert "Report implemented" not in order_page
    for label in ("No partner available", "Equipment missing", "Other"):
        assert label in form
    assert "Details" in form and ">Send</button>" in form


def test_officer_answers_through_the_form_and_sees_it_waiting(
    client, order, officer, sergeant, reasons
):
    client.force_login(officer)
    url = reverse("bulletins:cannot_comply", args=[order.pk])

    response = client.post(
        url, {"reason": reasons["No partner available"].pk, "detail": "All paired"}, follow=True
    )

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("bulletins:detail", args=[order.pk])
    assert "Sent to your supervisors" in page
    assert "You said you cannot comply at" in page
    assert "No partner available - waiting for a supervisor" in page
    assert Response.objects.get().user == officer


@pytest.mark.parametrize(
    "data",
    [{}, {"reason": "", "detail": "x"}, {"detail": "x" * 10_000, "reason": "REASON"},
     {"reason": "99999999"}, {"reason": "OTHER", "detail": ""}],
)  # fmt: skip
def test_the_form_refuses_bad_input_with_nothing_saved(client, order, officer, reasons, data):
    data = {key: value.replace("REASON", str(reasons["No partner available"].pk))
            .replace("OTHER", str(reasons["Other"].pk)) for key, value in data.items()}  # fmt: skip
    client.force_login(officer)

    response = client.post(reverse("bulletins:cannot_comply", args=[order.pk]), data)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert 'class="errorlist' in response.content.decode()
    assert nothing_saved()


def test_report_implemented_from_the_page(client, sergeant, precinct17):
    order = published_bulletin(
        sergeant, precinct17, implemented_from="supervisors",
        implemented_prompt="Armed officer posted at each public entrance",
    )  # fmt: skip
    client.force_login(sergeant)
    detail = reverse("bulletins:detail", args=[order.pk])

    before = client.get(detail).content.decode()
    client.post(reverse("bulletins:implemented", args=[order.pk]), {"note": "Two posted"})
    after = client.get(detail).content.decode()

    assert "Armed officer posted at each public entrance" in before
    assert f'href="{reverse("bulletins:implemented", args=[order.pk])}"' in before
    assert "You reported it implemented at" in after and "Two posted" in after
    assert f'href="{reverse("bulletins:implemented", args=[order.pk])}"' not in after


def test_one_report_per_unit_counts_for_its_supervisors(client, sergeant, precinct17):
    lieutenant = UserFactory(email="lt@agency.test", name="Lt. Rosa Diaz", unit=precinct17,
                             role=User.Role.SUPERVISOR)  # fmt: skip
    order = published_bulletin(sergeant, precinct17, implemented_from="units")
    responses.report_implemented(order, user=lieutenant, note="Posted", now=timezone.now())
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:detail", args=[order.pk])).content.decode()

    assert "Lt. Rosa Diaz reported it implemented for 17th Precinct" in page
    assert f'href="{reverse("bulletins:implemented", args=[order.pk])}"' not in page


def test_the_sergeant_resolves_from_the_coverage_page_and_the_officer_sees_it(
    client, order, officer, sergeant, reasons
):
    response = answer(order, officer, reasons, detail="Partner out sick")
    client.force_login(sergeant)
    coverage = client.get(reverse("bulletins:coverage", args=[order.pk])).content.decode()

    done = client.post(
        reverse("bulletins:resolve", args=[response.pk]),
        {"resolution": "Paired with P.O. Diaz at 08:40"},
    )
    client.force_login(officer)
    page = client.get(reverse("bulletins:detail", args=[order.pk])).content.decode()

    assert "Partner out sick" in coverage and "1 open, 1 in all" in coverage
    assert reverse("bulletins:resolve", args=[response.pk]) in coverage
    assert done.status_code == HTTPStatus.FOUND
    assert "Resolved</strong> by Sgt. Dan Kowalski" in page
    assert "Paired with P.O. Diaz at 08:40" in page


def test_resolving_outside_scope_is_refused(client, admin, agency, officer, sergeant75, reasons):
    agency_wide = published_bulletin(admin, agency)
    response = answer(agency_wide, officer, reasons)
    client.force_login(sergeant75)
    url = reverse("bulletins:resolve", args=[response.pk])

    page = client.get(url)
    post = client.post(url, {"resolution": "Not mine"})

    assert (page.status_code, post.status_code) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    assert Response.objects.get().resolved_at is None


def test_the_coverage_list_takes_a_fixed_number_of_queries(
    client, django_assert_max_num_queries, admin, agency, precinct17, reasons
):
    order = published_bulletin(admin, agency, priority=1)
    for person in UserFactory.create_batch(25, unit=precinct17):
        answer(order, person, reasons, detail="Short")
    client.force_login(admin)
    url = reverse("bulletins:coverage", args=[order.pk])
    client.get(url)

    with django_assert_max_num_queries(30):
        page = client.get(url).content.decode()

    assert "25 open, 25 in all" in page
    assert page.count(">Resolve<") == 25


# The banner and the kept feed page


def test_supervisors_concerned_see_a_banner_on_their_next_page_load(
    client, order, officer, sergeant, sergeant75, reasons
):
    client.force_login(sergeant)
    feed = reverse("bulletins:feed")
    before = client.get(feed).content.decode()  # kept
    answer(order, officer, reasons)

    after = client.get(feed).content.decode()
    client.force_login(sergeant75)
    elsewhere = client.get(feed).content.decode()

    assert "cannot comply" not in before
    assert "1 officer cannot comply" in after
    assert reverse("bulletins:coverage", args=[order.pk]) in after
    assert "officer cannot comply" not in elsewhere


def test_the_banner_goes_once_resolved(client, order, officer, sergeant, reasons):
    response = answer(order, officer, reasons)
    client.force_login(sergeant)
    feed = reverse("bulletins:feed")
    before = client.get(feed).content.decode()

    responses.resolve(response, by=sergeant, resolution="Paired", now=timezone.now())
    after = client.get(feed).content.decode()

    assert "1 officer cannot comply" in before
    assert "officer cannot comply" not in after


def test_an_officer_gets_no_banner_query(client, order, officer, django_assert_num_queries):
    from bulletins import response_views

    with django_assert_num_queries(0):
        assert response_views.banner(officer, timezone.now()) == []


# API


def bearer(user, *, read_only=False):
    _, secret = tokens.issue_token(user, name="Car", now=timezone.now(), is_read_only=read_only)
    return {"authorization": f"Bearer {secret}"}


def test_an_officer_answers_through_the_api_with_a_token(client, order, officer, reasons):
    reason = reasons["No partner available"]
    url = f"{API}/bulletins/{order.pk}/responses"

    listed = client.get(f"{API}/bulletins/{order.pk}/reasons", headers=bearer(officer))
    posted = client.post(
        url, {"kind": "cannot_comply", "reason_id": reason.pk, "detail": "Solo tonight"},
        content_type="application/json", headers=bearer(officer),
    )  # fmt: skip

    assert [row["label"] for row in listed.json()] == list(reasons)
    assert posted.status_code == HTTPStatus.CREATED, posted.content
    body = posted.json()
    assert (body["user_id"], body["reason"], body["detail"]) == (
        officer.pk, "No partner available", "Solo tonight",
    )  # fmt: skip
    assert body["auth_method"].startswith("api-token:")
    assert NotificationEvent.objects.filter(event=Event.CANNOT_COMPLY).count() == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"user_id": "OTHER"},
        {"user": "OTHER"},
        {"detail": "x" * 10_000},
        {"reason_id": None},
    ],
)
def test_the_api_refuses_answers_for_another_person_or_bad_input_with_nothing_saved(
    client, order, officer, auxiliary, reasons, extra
):
    payload = {"kind": "cannot_comply", "reason_id": reasons["No partner available"].pk}
    payload |= {key: auxiliary.pk if value == "OTHER" else value for key, value in extra.items()}

    posted = client.post(
        f"{API}/bulletins/{order.pk}/responses", payload, content_type="application/json",
        headers=bearer(officer),
    )  # fmt: skip

    assert posted.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, posted.content
    assert nothing_saved()


def test_the_api_refuses_a_read_only_token_and_a_bulletin_outside_the_audience(
    client, order, officer, outsider, reasons
):
    payload = {"kind": "cannot_comply", "reason_id": reasons["No partner available"].pk}
    url = f"{API}/bulletins/{order.pk}/responses"

    read_only = client.post(url, payload, content_type="application/json",
                            headers=bearer(officer, read_only=True))  # fmt: skip
    outside = client.post(url, payload, content_type="application/json",
                          headers=bearer(outsider))  # fmt: skip

    assert read_only.status_code == HTTPStatus.FORBIDDEN
    assert outside.status_code == HTTPStatus.NOT_FOUND
    assert nothing_saved()


def test_responses_are_read_through_the_api_by_those_who_see_coverage(
    client, order, officer, sergeant, sergeant75, reasons
):
    answer(order, officer, reasons, detail="Solo")
    url = f"{API}/bulletins/{order.pk}/responses"

    theirs = client.get(url, headers=bearer(sergeant))
    officers = client.get(url, headers=bearer(officer))
    elsewhere = client.get(url, headers=bearer(sergeant75))

    assert theirs.status_code == HTTPStatus.OK
    assert [(r["name"], r["detail"], r["resolved_at"]) for r in theirs.json()["items"]] == [
        ("Maria Lopez", "Solo", None)
    ]
    assert officers.status_code == HTTPStatus.NOT_FOUND
    assert elsewhere.status_code == HTTPStatus.NOT_FOUND


def test_fan_out_delivers_to_a_real_addressee_list(order, officer, sergeant, reasons):
    answer(order, officer, reasons)
    outbox = NotificationEvent.objects.get(event=Event.CANNOT_COMPLY)

    notifications.fan_out(outbox)

    assert list(Notification.objects.values_list("user_id", flat=True)) == [sergeant.pk]

"""Who may do what to which bulletin, through the real URLs: persona x action x status.

A bulletin outside your audience is a 404 (page, attachments, acknowledge URL); managing is for
supervisors whose scope holds every audience unit, and for the agency admin.
"""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from bulletins.services import attachments, authoring
from portal.models import PushSubscription, Unit
from tests.factories import approver, draft_bulletin, published_bulletin

pytestmark = pytest.mark.django_db

OK = HTTPStatus.OK
FOUND = HTTPStatus.FOUND
FORBIDDEN = HTTPStatus.FORBIDDEN
NOT_FOUND = HTTPStatus.NOT_FOUND
CREATED = HTTPStatus.CREATED
UNPROCESSABLE = HTTPStatus.UNPROCESSABLE_ENTITY

PERSONAS = ("officer", "auxiliary", "sergeant", "outsider", "admin")
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"

# action, bulletin: expected status for officer, auxiliary, sergeant, outsider, admin
MATRIX = [
    ("create", None, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    ("create_post", None, FORBIDDEN, FORBIDDEN, FOUND, FORBIDDEN, FOUND),
    ("audience_count", None, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    # The agency's lists (default statement, reasons, topics): its admins only.
    ("agency_lists", None, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    ("agency_lists_post", None, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FOUND),
    # Readable offline (issue 22): each person's own bundle; the offline page is for anyone.
    ("offline_bundle", None, OK, OK, OK, OK, OK),
    ("offline_page", None, OK, OK, OK, OK, OK),
    # A unit's tours of duty (issue 23): the agency's admins only.
    ("unit_tours", None, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    ("unit_tours_post", None, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, FOUND),
    # Devices with alerts (issue 22): everyone has the page; a device is stopped by its owner
    # only (the officer's here), anyone else gets a 404.
    ("devices", None, OK, OK, OK, OK, OK),
    ("device_stop", "officers_device", FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    # An Order for the 17th Precinct, written and published by its sergeant.
    ("view", "precinct_order", OK, OK, OK, NOT_FOUND, OK),
    ("acknowledge", "precinct_order", FOUND, FOUND, FOUND, NOT_FOUND, NOT_FOUND),
    ("acknowledge_answers", "precinct_order", FOUND, FOUND, FOUND, NOT_FOUND, NOT_FOUND),
    # Acknowledged offline (issue 22), answered in JSON: 201 recorded; 200 for the sergeant,
    # who wrote it and counts as acknowledged already.
    ("acknowledge_offline", "precinct_order", CREATED, CREATED, OK, NOT_FOUND, NOT_FOUND),
    ("attachment", "precinct_order", OK, OK, OK, NOT_FOUND, OK),
    ("amend", "precinct_order", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("amend_post", "precinct_order", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("lift", "precinct_order", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("lift_post", "precinct_order", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("edit", "precinct_order", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("preview", "precinct_order", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("remind", "precinct_order", FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    # An agency-wide Order by the admin: the sergeant reads it, but may not manage it.
    ("view", "agency_order", OK, OK, OK, OK, OK),
    ("acknowledge", "agency_order", FOUND, FOUND, FOUND, FOUND, FOUND),
    ("attachment", "agency_order", OK, OK, OK, OK, OK),
    ("amend", "agency_order", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    ("amend_post", "agency_order", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, FOUND),
    ("lift", "agency_order", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    ("lift_post", "agency_order", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, FOUND),
    ("preview", "agency_order", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    # ... but may remind his own people of it: whoever follows the coverage may chase.
    ("remind", "agency_order", FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    ("remind_post", "agency_order", FORBIDDEN, FORBIDDEN, FOUND, FORBIDDEN, FOUND),
    # The implemented status board: whoever follows the coverage, of an Order asking reports;
    # an Order asking none has no board; an Order of the 75th is outside the sergeant's scope.
    ("implemented_board", "station_order", FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    ("implemented_board", "agency_order", FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, NOT_FOUND),
    ("implemented_board", "order75", FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, OK),
    # Sworn members only: the auxiliaries are taken off the street.
    ("view", "sworn_order", OK, NOT_FOUND, OK, NOT_FOUND, OK),
    ("acknowledge", "sworn_order", FOUND, NOT_FOUND, FOUND, NOT_FOUND, NOT_FOUND),
    # Answering back (issue 20): whoever an Order is addressed to; resolving an officer's
    # "cannot comply": a supervisor whose scope holds the officer's unit (the 17th's).
    ("cannot_comply", "precinct_order", OK, OK, OK, NOT_FOUND, NOT_FOUND),
    ("cannot_comply_post", "precinct_order", FOUND, FOUND, FOUND, NOT_FOUND, NOT_FOUND),
    ("cannot_comply", "agency_order", OK, OK, OK, OK, OK),
    ("cannot_comply", "sworn_order", OK, NOT_FOUND, OK, NOT_FOUND, NOT_FOUND),
    ("cannot_comply_post", "sworn_order", FOUND, NOT_FOUND, FOUND, NOT_FOUND, NOT_FOUND),
    ("cannot_comply", "precinct_draft", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    ("implemented", "precinct_order", OK, OK, OK, NOT_FOUND, NOT_FOUND),
    ("implemented_post", "precinct_draft", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    ("resolve", "agency_order", FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    ("resolve_post", "agency_order", FORBIDDEN, FORBIDDEN, FOUND, FORBIDDEN, FOUND),
    # A draft for the 17th Precinct: nobody reads it before it is published.
    ("view", "precinct_draft", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("acknowledge", "precinct_draft", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    ("acknowledge_answers", "precinct_draft", *[NOT_FOUND] * 5),
    ("acknowledge_offline", "precinct_draft", *[NOT_FOUND] * 5),
    ("attachment", "precinct_draft", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("edit", "precinct_draft", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("preview", "precinct_draft", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("publish", "precinct_draft", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    # An agency-wide draft by the admin: outside the sergeant's scope.
    ("edit", "agency_draft", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    ("preview", "agency_draft", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK),
    ("publish", "agency_draft", NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, FOUND),
    # A second pair of eyes (issue 21): the sergeant writes to his borough, beyond his command.
    # He keeps his draft and may submit it (or publish in an emergency), never approve it; the
    # admin's scope covers the borough: he approves, sends back, confirms, lifts on review.
    ("approvals", None, FORBIDDEN, FORBIDDEN, OK, FORBIDDEN, OK),
    ("edit", "borough_draft", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("submit", "borough_draft", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("emergency", "borough_draft", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("publish", "borough_draft", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("preview", "borough_awaiting", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("approve", "borough_awaiting", NOT_FOUND, NOT_FOUND, FORBIDDEN, NOT_FOUND, FOUND),
    ("send_back", "borough_awaiting", NOT_FOUND, NOT_FOUND, FORBIDDEN, NOT_FOUND, OK),
    ("send_back_post", "borough_awaiting", NOT_FOUND, NOT_FOUND, FORBIDDEN, NOT_FOUND, FOUND),
    ("view", "borough_emergency", OK, OK, OK, NOT_FOUND, OK),
    ("confirm", "borough_emergency", NOT_FOUND, NOT_FOUND, FORBIDDEN, NOT_FOUND, FOUND),
    ("lift_on_review", "borough_emergency", NOT_FOUND, NOT_FOUND, FORBIDDEN, NOT_FOUND, OK),
    # Roll call (issue 23): everyone types a code; supervisors start one for a unit they
    # supervise; the sergeant's screen is his and his commanders' (404 to anyone else). The
    # code of the 17th's Day roll call, where the officer alone was present: only she co-signs.
    ("roll_call", None, OK, OK, OK, OK, OK),
    ("roll_call_start", "roll_call", FORBIDDEN, FORBIDDEN, FOUND, FORBIDDEN, FOUND),
    ("roll_call_detail", "roll_call", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("roll_call_finish", "roll_call", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
    ("roll_call_code", "finished_roll_call", OK, *[UNPROCESSABLE] * 4),
    ("roll_call_sign", "finished_roll_call", FOUND, *[UNPROCESSABLE] * 4),
    # The roll-call sheet and who signed it on paper: the sergeant's screen's access.
    ("roll_call_print", "roll_call", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("roll_call_print", "finished_roll_call", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("roll_call_paper", "finished_roll_call", NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK),
    ("roll_call_paper_post", "finished_roll_call", NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, FOUND),
]

CASES = [
    pytest.param(persona, action, target, expected, id=f"{persona}-{action}-{target}-{expected}")
    for action, target, *statuses in MATRIX
    for persona, expected in zip(PERSONAS, statuses, strict=True)
]


def _with_pdf(draft, by):
    upload = SimpleUploadedFile("pairing-roster.pdf", PDF, content_type="application/pdf")
    attachments.attach_files(draft, [upload], ["application/pdf"], by=by, now=timezone.now())
    return draft


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


class Made(dict):
    """The matrix's bulletins, each made the first time a case asks for it: a case uses one,
    and making all eleven for each of some 300 cases was most of the file's time."""

    def __init__(self, makers):
        super().__init__()
        self.makers = makers

    def __missing__(self, name):
        self[name] = self.makers[name]()
        return self[name]


@pytest.fixture
def bulletins(officer, auxiliary, sergeant, outsider, admin, agency, precinct17):
    from bulletins.services import approval

    now = timezone.now()
    borough = Unit.objects.get_parent(precinct17)

    def borough_awaiting():
        draft = draft_bulletin(sergeant, borough, title="Borough: guard the entrances")
        return approval.submit_for_approval(draft, by=sergeant, now=now)

    def borough_emergency():
        return approval.publish_in_emergency(
            draft_bulletin(sergeant, borough, title="Borough: no solo cars"),
            by=sergeant, now=now, reason="Shots fired at a patrol car.",
        )  # fmt: skip

    def precinct_order():
        draft = _with_pdf(
            draft_bulletin(sergeant, precinct17, title="Pair up in the 17th"), sergeant
        )
        return authoring.publish_bulletin(draft, by=sergeant, now=now)

    def agency_order():
        draft = _with_pdf(draft_bulletin(admin, agency, title="No solo posts"), admin)
        return authoring.publish_bulletin(draft, by=admin, now=now, approved_by=approver())

    return Made({
        "precinct_order": precinct_order,
        "agency_order": agency_order,
        "sworn_order": lambda: published_bulletin(
            sergeant, precinct17, title="Sworn only", to_auxiliary=False, to_civilian=False
        ),
        "precinct_draft": lambda: _with_pdf(
            draft_bulletin(sergeant, precinct17, title="Draft"), sergeant
        ),
        "agency_draft": lambda: draft_bulletin(admin, agency, title="Agency draft"),
        "station_order": lambda: published_bulletin(
            sergeant, precinct17, title="Armed officer at the door", implemented_from="units"
        ),
        "order75": lambda: published_bulletin(
            admin, outsider.unit, title="Armed officer in the 75th", implemented_from="units"
        ),
        "borough_draft": lambda: draft_bulletin(sergeant, borough, title="Borough draft"),
        "borough_awaiting": borough_awaiting,
        "borough_emergency": borough_emergency,
        # Not bulletins: the 17th Precinct's Day roll call, started and finished.
        "roll_call": lambda: _roll_call(sergeant, officer, auxiliary, precinct17, finish=False),
        "finished_roll_call": lambda: _roll_call(sergeant, officer, auxiliary, precinct17),
        # Not a bulletin: a phone where the officer allowed alerts.
        "officers_device": lambda: PushSubscription.objects.create(
            user=officer, endpoint="https://fcm.googleapis.com/fcm/send/officer-phone",
            p256dh="key", auth="secret", name="Chrome on Android", created_at=now,
        ),
    })  # fmt: skip


def _roll_call(sergeant, officer, auxiliary, precinct17, *, finish=True):
    """The Day roll call of the 17th Precinct (officer and auxiliary on the Day tour), and
    finished with the officer alone present and the sergeant's order briefed."""
    import datetime as dt

    from bulletins.services import roll_call
    from portal import tours
    from portal.models import Tour, User

    agency = Unit.objects.get(path=precinct17.agency_path)
    day, _ = Tour.objects.get_or_create(
        unit=agency, name="Day", defaults={"starts_at": dt.time(7), "ends_at": dt.time(15)}
    )
    tours.tours_changed(agency)
    User.objects.filter(pk__in=[officer.pk, auxiliary.pk]).update(tour="Day")
    now = timezone.now()
    started = roll_call.start_roll_call(unit=precinct17, tour=day, by=sergeant, now=now)
    if not finish:
        return started
    published_bulletin(sergeant, precinct17, title="Pair up at roll call")
    versions = [o.current_version.pk for o in roll_call.orders_to_brief(started, now)]
    return roll_call.finish_roll_call(
        started, present_ids=[officer.pk], briefed_version_ids=versions, by=sergeant, now=now
    )


def _bulletin_form(precinct17):
    later = timezone.localtime() + timedelta(hours=36)
    return {
        "title": "Vehicle checks",
        "instruction": "Check your vehicle before every tour.",
        "body": "",
        "kind": "order",
        "priority": "1",
        "units": [precinct17.pk],
        "to_sworn": "on",
        "starts": "now",
        "expires_at": later.strftime("%Y-%m-%dT%H:%M"),
        "review_hours": "72",
    }


def _amend_form(bulletin):
    return {
        "title": bulletin.title,
        "instruction": bulletin.instruction.rstrip("."),  # a correction must change something
        "body": bulletin.body,
        "priority": str(bulletin.priority),
        "until_further_notice": "on",
        "is_material": "no",
        "reason": "Typo in the instructions.",
    }


def _reason(bulletin):
    from bulletins.models import CannotComplyReason

    return CannotComplyReason.objects.get_or_create(
        agency_id=bulletin.agency_id, label="No partner available"
    )[0]


def _acknowledge_offline(client, bulletin):
    """What a device sends once back online: made a moment ago, on the version it was shown."""
    import uuid

    made = {"version": max(bulletin.version, 1), "client_id": str(uuid.uuid4()),
            "device_time": timezone.now().isoformat()}  # fmt: skip
    url = reverse("bulletins:acknowledge_offline", args=[bulletin.pk])
    return client.post(url, made, content_type="application/json")


def _officers_answer(bulletin):
    """The officer of the 17th Precinct says they cannot comply with `bulletin`."""
    from bulletins.services import responses
    from portal.models import User

    officer = User.objects.get(email="officer@agency.test")
    return responses.cannot_comply(
        bulletin, user=officer, reason=_reason(bulletin), detail="", now=timezone.now()
    )


ACTIONS = {
    "agency_lists": lambda client, b, ctx: client.get(reverse("bulletins:agency_lists")),
    "agency_lists_post": lambda client, b, ctx: client.post(
        reverse("bulletins:agency_lists"), {"action": "add", "list": "topics", "name": "Crowds"}
    ),
    "offline_bundle": lambda client, b, ctx: client.get(reverse("bulletins:offline_bundle")),
    "offline_page": lambda client, b, ctx: client.get(reverse("offline")),
    "devices": lambda client, b, ctx: client.get(reverse("bulletins:devices")),
    "device_stop": lambda client, b, ctx: client.post(
        reverse("bulletins:device_stop", args=[b.pk])
    ),
    "roll_call": lambda client, b, ctx: client.get(reverse("bulletins:roll_call")),
    "roll_call_start": lambda client, b, ctx: client.post(
        reverse("bulletins:roll_call_start"), {"unit": ctx["precinct17"].pk, "tour": "Day"}
    ),
    "roll_call_detail": lambda client, b, ctx: client.get(
        reverse("bulletins:roll_call_detail", args=[b.pk])
    ),
    "roll_call_finish": lambda client, b, ctx: client.post(
        reverse("bulletins:roll_call_finish", args=[b.pk]),
        {"present": [b.people.first().user_id], "action": "finish"},
    ),
    "roll_call_code": lambda client, b, ctx: client.post(
        reverse("bulletins:roll_call_code"), {"code": b.code}
    ),
    "roll_call_sign": lambda client, b, ctx: client.post(
        reverse("bulletins:roll_call_sign"), {"code": b.code}
    ),
    "roll_call_print": lambda client, b, ctx: client.get(
        reverse("bulletins:roll_call_print", args=[b.pk])
    ),
    "roll_call_paper": lambda client, b, ctx: client.get(
        reverse("bulletins:roll_call_paper", args=[b.pk])
    ),
    "roll_call_paper_post": lambda client, b, ctx: client.post(
        reverse("bulletins:roll_call_paper", args=[b.pk]),
        {"person": [b.people.filter(present=True).first().user_id]},
    ),
    "unit_tours": lambda client, b, ctx: client.get(
        reverse("unit_tours", args=[ctx["precinct17"].pk])
    ),
    "unit_tours_post": lambda client, b, ctx: client.post(
        reverse("unit_tours", args=[ctx["precinct17"].pk]),
        {
            "tours-TOTAL_FORMS": "1",
            "tours-INITIAL_FORMS": "0",
            "tours-0-name": "Day",
            "tours-0-starts_at": "07:00",
            "tours-0-ends_at": "15:00",
        },
    ),
    "acknowledge_answers": lambda client, b, ctx: client.post(
        reverse("bulletins:acknowledge", args=[b.pk]),
        {"version": b.version, "check": "1", "answer-1": "0"},
    ),
    "cannot_comply": lambda client, b, ctx: client.get(
        reverse("bulletins:cannot_comply", args=[b.pk])
    ),
    "cannot_comply_post": lambda client, b, ctx: client.post(
        reverse("bulletins:cannot_comply", args=[b.pk]), {"reason": _reason(b).pk}
    ),
    "implemented": lambda client, b, ctx: client.get(reverse("bulletins:implemented", args=[b.pk])),
    "implemented_post": lambda client, b, ctx: client.post(
        reverse("bulletins:implemented", args=[b.pk]), {"note": ""}
    ),
    "resolve": lambda client, b, ctx: client.get(
        reverse("bulletins:resolve", args=[_officers_answer(b).pk])
    ),
    "resolve_post": lambda client, b, ctx: client.post(
        reverse("bulletins:resolve", args=[_officers_answer(b).pk]), {"resolution": "Paired"}
    ),
    "create": lambda client, b, ctx: client.get(reverse("bulletins:create")),
    "create_post": lambda client, b, ctx: client.post(
        reverse("bulletins:create"), _bulletin_form(ctx["precinct17"])
    ),
    "audience_count": lambda client, b, ctx: client.post(
        reverse("bulletins:audience_count"), {"units": ctx["precinct17"].pk, "to_sworn": "on"}
    ),
    "view": lambda client, b, ctx: client.get(reverse("bulletins:detail", args=[b.pk])),
    "acknowledge": lambda client, b, ctx: client.post(
        reverse("bulletins:acknowledge", args=[b.pk]), {"version": b.version}
    ),
    "acknowledge_offline": lambda client, b, ctx: _acknowledge_offline(client, b),
    "attachment": lambda client, b, ctx: client.get(
        reverse("bulletins:attachment", args=[b.pk, b.attachments.get().pk])
    ),
    "edit": lambda client, b, ctx: client.get(reverse("bulletins:edit", args=[b.pk])),
    "preview": lambda client, b, ctx: client.get(reverse("bulletins:preview", args=[b.pk])),
    "publish": lambda client, b, ctx: client.post(reverse("bulletins:publish", args=[b.pk])),
    "amend": lambda client, b, ctx: client.get(reverse("bulletins:amend", args=[b.pk])),
    "amend_post": lambda client, b, ctx: client.post(
        reverse("bulletins:amend", args=[b.pk]), _amend_form(b)
    ),
    "lift": lambda client, b, ctx: client.get(reverse("bulletins:lift", args=[b.pk])),
    "remind": lambda client, b, ctx: client.get(reverse("bulletins:remind", args=[b.pk])),
    "remind_post": lambda client, b, ctx: client.post(reverse("bulletins:remind", args=[b.pk])),
    "implemented_board": lambda client, b, ctx: client.get(
        reverse("bulletins:implemented_board", args=[b.pk])
    ),
    "approvals": lambda client, b, ctx: client.get(reverse("bulletins:approvals")),
    "submit": lambda client, b, ctx: client.post(reverse("bulletins:submit", args=[b.pk])),
    "emergency": lambda client, b, ctx: client.get(reverse("bulletins:emergency", args=[b.pk])),
    "approve": lambda client, b, ctx: client.post(reverse("bulletins:approve", args=[b.pk])),
    "send_back": lambda client, b, ctx: client.get(reverse("bulletins:send_back", args=[b.pk])),
    "send_back_post": lambda client, b, ctx: client.post(
        reverse("bulletins:send_back", args=[b.pk]), {"comment": "Name the side doors too."}
    ),
    "confirm": lambda client, b, ctx: client.post(reverse("bulletins:confirm", args=[b.pk])),
    "lift_on_review": lambda client, b, ctx: client.get(
        reverse("bulletins:lift_on_review", args=[b.pk])
    ),
    "lift_post": lambda client, b, ctx: client.post(
        reverse("bulletins:lift", args=[b.pk]), {"reason": "Threat assessed as over."}
    ),
}


@pytest.mark.parametrize(("persona", "action", "target", "expected"), CASES)
def test_permission_matrix(
    request, client, bulletins, precinct17, persona, action, target, expected
):
    client.force_login(request.getfixturevalue(persona))
    bulletin = bulletins[target] if target else None

    response = ACTIONS[action](client, bulletin, {"precinct17": precinct17})

    assert response.status_code == expected


def test_anonymous_visitor_is_sent_to_sign_in_for_every_bulletin_url(client, bulletins):
    bulletin = bulletins["precinct_order"]
    urls = [
        reverse("bulletins:feed"),
        reverse("bulletins:create"),
        reverse("bulletins:detail", args=[bulletin.pk]),
        reverse("bulletins:attachment", args=[bulletin.pk, bulletin.attachments.get().pk]),
        reverse("bulletins:amend", args=[bulletin.pk]),
        reverse("bulletins:offline_bundle"),
    ]

    responses = [client.get(url) for url in urls]

    assert [r.status_code for r in responses] == [FOUND] * len(urls)
    assert all(r["Location"].startswith(reverse("account_login")) for r in responses)


def test_state_changes_refuse_get(client, sergeant, bulletins):
    client.force_login(sergeant)
    draft, order = bulletins["precinct_draft"], bulletins["precinct_order"]

    publish = client.get(reverse("bulletins:publish", args=[draft.pk]))
    acknowledge = client.get(reverse("bulletins:acknowledge", args=[order.pk]))

    assert publish.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert acknowledge.status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_can_manage_answers_as_the_manageable_queryset(
    admin, sergeant, officer, outsider, agency, manhattan, precinct17, squad17, precinct75
):
    from bulletins import permissions
    from portal.models import User
    from tests.factories import UserFactory, make_unit

    borough_chief = UserFactory(unit=manhattan, role=User.Role.SUPERVISOR)
    squad_sergeant = UserFactory(unit=squad17, role=User.Role.SUPERVISOR)
    brooklyn_sergeant = UserFactory(unit=precinct75, role=User.Role.SUPERVISOR)
    auditor = UserFactory(unit=agency, role=User.Role.AUDITOR)
    superuser = UserFactory(unit=None, is_superuser=True)
    other_agency = make_unit("County Police")
    other_admin = UserFactory(unit=other_agency, role=User.Role.ADMIN)
    bulletins = [
        published_bulletin(sergeant, precinct17, title="Precinct"),
        published_bulletin(squad_sergeant, squad17, title="Squad"),
        published_bulletin(admin, agency, title="Agency-wide"),
        published_bulletin(admin, manhattan, title="Borough"),
        published_bulletin(admin, [precinct17, precinct75], title="Two precincts"),
        published_bulletin(other_admin, other_agency, title="Other agency"),
        draft_bulletin(sergeant, precinct17, title="Draft"),
    ]
    people = [admin, sergeant, officer, outsider, borough_chief, squad_sergeant,
              brooklyn_sergeant, auditor, superuser, other_admin]  # fmt: skip

    answers = {
        (person.email, bulletin.title): (
            permissions.can_manage(person, bulletin),
            permissions.manageable_bulletins(person).filter(pk=bulletin.pk).exists(),
        )
        for person in people
        for bulletin in bulletins
    }

    assert all(fast == slow for fast, slow in answers.values()), answers
    managed = {key for key, (fast, _) in answers.items() if fast}
    assert (sergeant.email, "Precinct") in managed
    assert (sergeant.email, "Squad") in managed
    assert (sergeant.email, "Two precincts") not in managed
    assert (borough_chief.email, "Precinct") in managed
    assert (squad_sergeant.email, "Precinct") not in managed
    assert (other_admin.email, "Agency-wide") not in managed
    assert (admin.email, "Other agency") not in managed
    assert not any(person in (officer.email, auditor.email) for person, _ in managed)


TWO_STEP_PAGES = ("mfa_index", "mfa_add_webauthn", "mfa_list_webauthn")


@pytest.mark.parametrize("persona", PERSONAS)
def test_everyone_manages_their_own_passkeys_and_no_one_elses(request, client, persona):
    from allauth.mfa.models import Authenticator

    person = request.getfixturevalue(persona)
    others = Authenticator.objects.create(
        user=request.getfixturevalue("outsider" if persona != "outsider" else "officer"),
        type=Authenticator.Type.WEBAUTHN,
        data={"name": "Their phone", "credential": {}},
    )
    client.force_login(person)

    pages = [client.get(reverse(name)).status_code for name in TWO_STEP_PAGES]
    theirs = client.get(reverse("mfa_remove_webauthn", args=[others.pk]))

    assert pages == [OK] * len(TWO_STEP_PAGES)
    assert theirs.status_code == NOT_FOUND
    assert Authenticator.objects.filter(pk=others.pk).exists()


def test_anonymous_visitor_is_sent_to_sign_in_for_the_two_step_pages(client):
    responses = [client.get(reverse(name)) for name in TWO_STEP_PAGES]

    assert [r.status_code for r in responses] == [FOUND] * len(TWO_STEP_PAGES)
    assert all(r["Location"].startswith(reverse("account_login")) for r in responses)

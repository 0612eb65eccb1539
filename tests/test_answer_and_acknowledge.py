"""The check of understanding answered and the acknowledgement in one request
(`reading.answer_and_acknowledge`): one statement records the attempt, its audit event and, when
every answer is right, the acknowledgement, with the same evidence as the long way (`answer_check`
then `acknowledge`); anything it does not take is decided by the long way, with nothing written
twice."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bulletins import quiz
from bulletins.models import Bulletin, QuizAttempt, Receipt, Recipient
from bulletins.services import reading
from portal import audit
from portal.models import AuditEvent
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db

API = "/api/v1"
PAIRING_CHECK = [
    {
        "question": "Can you work a post alone while this order is in force?",
        "choices": ["Yes, if my sergeant agrees", "No - every post is paired"],
        "answer": 1,
    }
]
TWO_QUESTIONS = [
    *PAIRING_CHECK,
    {
        "question": "Who do you tell about a solo assignment?",
        "choices": ["Nobody", "The desk officer", "The press"],
        "answer": 1,
    },
]
EVENT_FIELDS = ("action", "object_type", "object_id", "object_version", "outcome", "detail",
                "agency_id", "ip", "user_agent", "at")  # fmt: skip


@pytest.fixture
def checked_order(sergeant, precinct17, officer, auxiliary, outsider):
    """Published after the people exist: they were told (recipient rows)."""
    return published_bulletin(sergeant, precinct17, questions=PAIRING_CHECK)


def _request():
    from django.test import RequestFactory

    request = RequestFactory().post("/", HTTP_USER_AGENT="PatrolCar/1.0", REMOTE_ADDR="10.1.2.3")
    request.session = {"account_authentication_methods": [{"method": "password"}]}
    return request


def _answer(bulletin, user, answers, *, now=None, version=1):
    return reading.answer_and_acknowledge(
        bulletin.pk, user=user, version_number=version, answers=answers,
        now=now or timezone.now(), request=_request(),
    )  # fmt: skip


def _trail(user):
    """What was recorded of `user`: attempts, receipts, recipient row, audit events."""
    receipts = Receipt.objects.filter(user=user, acknowledged_at__isnull=False)
    recipient = Recipient.objects.get(user=user)
    return (
        list(QuizAttempt.objects.filter(user=user).order_by("id").values_list(
            "bulletin_id", "version__number", "answers", "passed", "created_at")),
        list(receipts.values_list("version__number", "statement", "content_hash",
                                  "auth_method", "ip", "user_agent", "acknowledged_at")),
        (recipient.acknowledged_version, recipient.acknowledged_at),
        [tuple(getattr(event, name) for name in EVENT_FIELDS)
         for event in AuditEvent.objects.filter(actor=user).order_by("id")],
    )  # fmt: skip


def test_right_answers_are_recorded_and_acknowledged_in_one_statement(
    checked_order, officer, django_assert_num_queries
):
    now = timezone.now()

    with django_assert_num_queries(1):
        result = _answer(checked_order, officer, [1], now=now)

    assert result == (True, True)
    attempts, receipts, recipient, events = _trail(officer)
    assert attempts == [(checked_order.pk, 1, [1], True, now)]
    assert len(receipts) == 1 and recipient == (1, now)
    assert [(e[0], e[5]) for e in events] == [
        ("bulletin.answer_check", {"passed": True}),
        ("bulletin.acknowledge", {"content_hash": checked_order.versions.get().content_hash}),
    ]


def test_the_statement_records_what_the_long_way_records(sergeant, precinct17):
    quick = UserFactory(unit=precinct17)
    order = published_bulletin(sergeant, precinct17, questions=PAIRING_CHECK)
    slow = UserFactory(unit=precinct17)  # moved in after publication: the long way
    now = timezone.now()

    for person in (quick, slow):
        assert _answer(order, person, [0], now=now) == (False, False)
        assert _answer(order, person, [1], now=now) == (True, True)
        assert _answer(order, person, [1], now=now) == (True, False)  # once more: an attempt

    quick_trail, slow_trail = _trail(quick), _trail(slow)
    assert quick_trail == slow_trail
    attempts, receipts, _, events = quick_trail
    assert [attempt[3] for attempt in attempts] == [False, True, True]
    assert len(receipts) == 1
    assert [(event[0], event[5].get("passed")) for event in events] == [
        ("bulletin.answer_check", False),
        ("bulletin.answer_check", True),
        ("bulletin.acknowledge", None),
        ("bulletin.answer_check", True),
    ]
    assert events[0][7:9] == ("10.1.2.3", "PatrolCar/1.0")
    sealed = audit.seal_all()
    assert audit.first_broken_link() == (None, sealed)


def test_wrong_answers_record_a_failed_attempt_and_nothing_else(
    checked_order, officer, django_assert_num_queries
):
    with django_assert_num_queries(1):
        result = _answer(checked_order, officer, [0])

    assert result == (False, False)
    attempts, receipts, recipient, events = _trail(officer)
    assert [attempt[3] for attempt in attempts] == [False]
    assert receipts == [] and recipient == (None, None)
    assert [(e[0], e[5]) for e in events] == [("bulletin.answer_check", {"passed": False})]


@pytest.mark.parametrize(
    ("answers", "expected"), [([1, 0], False), ([0, 1], False), ([1, 1], True), ([1, 2], False)]
)
def test_every_question_must_be_right(sergeant, precinct17, officer, answers, expected):
    order = published_bulletin(sergeant, precinct17, questions=TWO_QUESTIONS)

    assert _answer(order, officer, answers) == (expected, expected)
    assert QuizAttempt.objects.get(user=officer).passed is expected


@pytest.mark.parametrize("answers", [[], [1], [1, 3], [2, 1], [None, 1], [1, 1, 1], ["1", 1]])
def test_an_answer_that_is_no_choice_is_not_an_attempt(sergeant, precinct17, officer, answers):
    order = published_bulletin(sergeant, precinct17, questions=TWO_QUESTIONS)

    with pytest.raises(ValidationError) as refused:
        _answer(order, officer, answers)

    assert refused.value.code in quiz.ANSWER_CODES
    assert not QuizAttempt.objects.exists()
    assert not AuditEvent.objects.filter(actor=officer).exists()


def test_answers_outside_the_audience_are_not_found(checked_order, outsider):
    with pytest.raises(Bulletin.DoesNotExist):
        _answer(checked_order, outsider, [1])

    assert not QuizAttempt.objects.exists()


def test_answers_to_an_order_without_questions_are_refused(sergeant, precinct17, officer):
    order = published_bulletin(sergeant, precinct17)

    with pytest.raises(ValidationError) as refused:
        _answer(order, officer, [1])

    assert refused.value.code == "no_questions"
    assert not QuizAttempt.objects.exists()
    assert not Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).exists()


def test_answers_to_a_version_no_longer_acknowledged_are_refused(checked_order, officer):
    with pytest.raises(ValidationError):
        _answer(checked_order, officer, [1], version=2)

    assert not QuizAttempt.objects.exists()


# One request: about what a plain acknowledgement costs


def _queries(client, url, data):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, data)
    return response, len(queries)


def test_answering_on_the_page_costs_what_a_plain_acknowledgement_costs(
    client, sergeant, precinct17, officer, checked_order
):
    plain = published_bulletin(sergeant, precinct17)
    client.force_login(officer)
    client.get(reverse("bulletins:feed"))  # the session's first use is not the point

    answered, with_check = _queries(
        client, reverse("bulletins:acknowledge", args=[checked_order.pk]),
        {"version": 1, "check": "1", "answer-1": "1"},
    )  # fmt: skip
    acknowledged, without = _queries(
        client, reverse("bulletins:acknowledge", args=[plain.pk]), {"version": 1}
    )

    assert answered.status_code == acknowledged.status_code == HTTPStatus.FOUND
    assert Receipt.objects.filter(user=officer, acknowledged_at__isnull=False).count() == 2
    assert with_check <= 4
    assert with_check == without


def test_wrong_answers_on_the_page_cost_one_statement_too(client, officer, checked_order):
    client.force_login(officer)
    client.get(reverse("bulletins:feed"))
    url = reverse("bulletins:acknowledge", args=[checked_order.pk])

    wrong, queries = _queries(client, url, {"version": 1, "check": "1", "answer-1": "0"})

    assert wrong.status_code == HTTPStatus.FOUND
    assert queries <= 4
    assert QuizAttempt.objects.get(user=officer).passed is False


@pytest.mark.usefixtures("own_cache_keys")
def test_the_api_answers_and_acknowledges_in_one_statement(client, officer, checked_order):
    client.force_login(officer)
    url = f"{API}/bulletins/{checked_order.pk}/acknowledge"

    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, {"version": 1, "answers": [1]},
                               content_type="application/json")  # fmt: skip

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["recorded"] is True
    statements = [query["sql"] for query in queries]
    assert sum("bulletins_quizattempt" in sql for sql in statements) == 1
    assert QuizAttempt.objects.get(user=officer).passed is True

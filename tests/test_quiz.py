"""The check of understanding: an Order with questions is acknowledged only after a passed
attempt by that person for that version; every attempt is recorded, wrong answers are refused
without saying which is right; the one-statement fast path refuses too."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from bulletins import quiz
from bulletins.models import QuizAttempt, Receipt, Recipient
from bulletins.services import authoring, reading
from portal.models import AuditEvent
from tests.factories import published_bulletin

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


@pytest.fixture
def checked_order(sergeant, precinct17, officer, auxiliary, outsider):
    """Published after the people exist: they were told (recipient rows)."""
    return published_bulletin(sergeant, precinct17, questions=PAIRING_CHECK)


def _acknowledged(user, bulletin):
    return Receipt.objects.filter(
        user=user, bulletin=bulletin, acknowledged_at__isnull=False
    ).exists()


# The service


def test_wrong_answers_are_recorded_and_refused(checked_order, officer):
    now = timezone.now()

    passed = reading.answer_check(checked_order, user=officer, answers=[0], now=now)

    assert passed is False
    attempt = QuizAttempt.objects.get(user=officer)
    assert (attempt.passed, attempt.answers, attempt.version.number) == (False, [0], 1)
    assert AuditEvent.objects.filter(
        action="bulletin.answer_check", actor=officer, detail__passed=False
    ).exists()
    with pytest.raises(ValidationError) as refused:
        reading.acknowledge(checked_order.pk, user=officer, version_number=1, now=now)
    assert refused.value.code == "quiz"
    assert not _acknowledged(officer, checked_order)


def test_right_answers_let_the_acknowledgement_through(checked_order, officer):
    now = timezone.now()

    passed = reading.answer_check(checked_order, user=officer, answers=[1], now=now)
    recorded = reading.acknowledge(checked_order.pk, user=officer, version_number=1, now=now)

    assert passed is True
    assert recorded is True
    assert _acknowledged(officer, checked_order)
    assert Recipient.objects.get(user=officer, bulletin=checked_order).acknowledged_version == 1


def test_every_attempt_is_counted(checked_order, officer, auxiliary):
    now = timezone.now()

    reading.answer_check(checked_order, user=officer, answers=[0], now=now)
    reading.answer_check(checked_order, user=officer, answers=[0], now=now)
    reading.answer_check(checked_order, user=officer, answers=[1], now=now)
    reading.answer_check(checked_order, user=auxiliary, answers=[1], now=now)

    attempts = QuizAttempt.objects.filter(bulletin=checked_order)
    assert attempts.filter(user=officer).count() == 3
    assert attempts.filter(user=officer, passed=True).count() == 1
    assert attempts.filter(passed=False).count() == 2


def test_every_question_must_be_right(sergeant, precinct17, officer):
    order = published_bulletin(sergeant, precinct17, questions=TWO_QUESTIONS)
    now = timezone.now()

    half = reading.answer_check(order, user=officer, answers=[1, 0], now=now)
    both = reading.answer_check(order, user=officer, answers=[1, 1], now=now)

    assert (half, both) == (False, True)


@pytest.mark.parametrize("answers", [[], [None], [1, 1], [2], [-1], ["1"]])
def test_an_unanswered_or_impossible_answer_is_not_an_attempt(checked_order, officer, answers):
    with pytest.raises(ValidationError) as refused:
        reading.answer_check(checked_order, user=officer, answers=answers, now=timezone.now())

    assert refused.value.code in quiz.ANSWER_CODES
    assert not QuizAttempt.objects.exists()


def test_an_attempt_outside_the_audience_is_not_found(checked_order, outsider):
    from bulletins.models import Bulletin

    with pytest.raises(Bulletin.DoesNotExist):
        reading.answer_check(checked_order, user=outsider, answers=[1], now=timezone.now())

    assert not QuizAttempt.objects.exists()


def test_a_pass_counts_for_its_version_only(checked_order, sergeant, officer):
    now = timezone.now()
    reading.answer_check(checked_order, user=officer, answers=[1], now=now)
    authoring.amend_bulletin(
        checked_order, by=sergeant, now=now, reason="Both tours", is_material=True,
        instruction="Work in pairs on both tours.",
    )  # fmt: skip

    with pytest.raises(ValidationError) as refused:
        reading.acknowledge(checked_order.pk, user=officer, version_number=2, now=now)

    assert refused.value.code == "quiz"


def test_acknowledging_twice_after_a_pass_records_once(checked_order, officer):
    now = timezone.now()
    reading.answer_check(checked_order, user=officer, answers=[1], now=now)

    first = reading.acknowledge(checked_order.pk, user=officer, version_number=1, now=now)
    second = reading.acknowledge(checked_order.pk, user=officer, version_number=1, now=now)

    assert (first, second) == (True, False)


def test_the_fast_path_refuses_a_version_with_questions_without_a_pass(checked_order, officer):
    """The one-statement path alone: it must write nothing until the person passed."""
    now = timezone.now()

    before = reading._acknowledge_at_once(
        checked_order.pk, user=officer, version_number=1, now=now, request=None
    )
    reading.answer_check(checked_order, user=officer, answers=[0], now=now)
    after_wrong = reading._acknowledge_at_once(
        checked_order.pk, user=officer, version_number=1, now=now, request=None
    )
    reading.answer_check(checked_order, user=officer, answers=[1], now=now)
    after_pass = reading._acknowledge_at_once(
        checked_order.pk, user=officer, version_number=1, now=now, request=None
    )

    assert (before, after_wrong, after_pass) == (False, False, True)
    assert _acknowledged(officer, checked_order)


def test_the_fast_path_does_not_take_another_persons_pass(checked_order, officer, auxiliary):
    now = timezone.now()
    reading.answer_check(checked_order, user=auxiliary, answers=[1], now=now)

    recorded = reading._acknowledge_at_once(
        checked_order.pk, user=officer, version_number=1, now=now, request=None
    )

    assert recorded is False


def test_the_fast_path_still_takes_an_order_without_questions(sergeant, precinct17, officer):
    order = published_bulletin(sergeant, precinct17)

    recorded = reading._acknowledge_at_once(
        order.pk, user=officer, version_number=1, now=timezone.now(), request=None
    )

    assert recorded is True


# The bulletin page


def test_the_page_shows_the_questions_above_the_statement(client, checked_order, officer):
    client.force_login(officer)

    page = client.get(reverse("bulletins:detail", args=[checked_order.pk])).content.decode()

    question = page.index("Can you work a post alone while this order is in force?")
    assert question < page.index('class="statement"') < page.index(">Acknowledge</button>")
    assert 'name="answer-1" value="1"' in page
    assert "(correct)" not in page


def test_wrong_answers_on_the_page_send_the_reader_back_to_the_text(client, checked_order, officer):
    client.force_login(officer)
    url = reverse("bulletins:acknowledge", args=[checked_order.pk])

    response = client.post(url, {"version": 1, "check": "1", "answer-1": "0"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("bulletins:detail", args=[checked_order.pk])
    page = response.content.decode()
    assert "Not quite: read the order again, then answer." in page
    assert "No - every post is paired" in page  # still offered, not marked as the right one
    assert QuizAttempt.objects.get(user=officer).passed is False
    assert not _acknowledged(officer, checked_order)


def test_right_answers_on_the_page_acknowledge_in_the_same_request(client, checked_order, officer):
    client.force_login(officer)
    url = reverse("bulletins:acknowledge", args=[checked_order.pk])

    response = client.post(url, {"version": 1, "check": "1", "answer-1": "1"}, follow=True)

    assert "Acknowledged. Thank you." in response.content.decode()
    assert QuizAttempt.objects.get(user=officer).passed is True
    assert _acknowledged(officer, checked_order)


def test_acknowledge_without_answers_is_refused_on_the_page(client, checked_order, officer):
    client.force_login(officer)

    response = client.post(
        reverse("bulletins:acknowledge", args=[checked_order.pk]), {"version": 1}, follow=True
    )

    assert quiz.ANSWER_FIRST in response.content.decode()
    assert not _acknowledged(officer, checked_order)


def test_an_unanswered_question_on_the_page_is_not_an_attempt(client, checked_order, officer):
    client.force_login(officer)

    response = client.post(
        reverse("bulletins:acknowledge", args=[checked_order.pk]),
        {"version": 1, "check": "1"},
        follow=True,
    )

    assert quiz.ANSWER_EVERY_QUESTION in response.content.decode()
    assert not QuizAttempt.objects.exists()


def test_answers_for_a_bulletin_outside_the_audience_are_not_found(client, checked_order, outsider):
    client.force_login(outsider)

    response = client.post(
        reverse("bulletins:acknowledge", args=[checked_order.pk]),
        {"version": 1, "check": "1", "answer-1": "1"},
    )

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not QuizAttempt.objects.exists()


# The API


def _api_ack(client, bulletin, payload):
    return client.post(
        f"{API}/bulletins/{bulletin.pk}/acknowledge", payload, content_type="application/json"
    )


@pytest.mark.usefixtures("own_cache_keys")
def test_the_api_refuses_a_version_with_questions_without_answers(client, checked_order, officer):
    client.force_login(officer)

    response = _api_ack(client, checked_order, {"version": 1})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["field"] == "answers"
    assert not _acknowledged(officer, checked_order)


@pytest.mark.usefixtures("own_cache_keys")
def test_the_api_records_wrong_answers_and_refuses_them(client, checked_order, officer):
    client.force_login(officer)

    response = _api_ack(client, checked_order, {"version": 1, "answers": [0]})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    body = response.json()
    assert (body["field"], body["errors"][0]["message"]) == ("answers", quiz.NOT_QUITE)
    assert QuizAttempt.objects.get(user=officer).passed is False
    assert not _acknowledged(officer, checked_order)


@pytest.mark.usefixtures("own_cache_keys")
def test_the_api_acknowledges_with_right_answers(client, checked_order, officer):
    client.force_login(officer)

    response = _api_ack(client, checked_order, {"version": 1, "answers": [1]})

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["recorded"] is True
    assert QuizAttempt.objects.get(user=officer).passed is True


@pytest.mark.usefixtures("own_cache_keys")
@pytest.mark.parametrize("answers", [[], [1, 1], [7], ["yes"]])
def test_the_api_refuses_malformed_answers_with_nothing_saved(
    client, checked_order, officer, answers
):
    client.force_login(officer)

    response = _api_ack(client, checked_order, {"version": 1, "answers": answers})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not QuizAttempt.objects.exists()
    assert not _acknowledged(officer, checked_order)


@pytest.mark.usefixtures("own_cache_keys")
def test_the_api_shows_the_questions_and_statement_but_not_the_answer(
    client, checked_order, officer
):
    client.force_login(officer)

    version = client.get(f"{API}/bulletins/{checked_order.pk}").json()["versions"][0]

    assert version["questions"] == [
        {"question": PAIRING_CHECK[0]["question"], "choices": PAIRING_CHECK[0]["choices"]}
    ]
    assert version["statement"] == reading.ACKNOWLEDGEMENT_STATEMENT
    assert "answer" not in version["questions"][0]

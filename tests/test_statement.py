"""What the reader signs and answers, from the author's side: the statement (pre-filled from the
agency's policy), the "Implemented" report and the check of understanding are set on the form,
versioned like the text, recorded on the receipt, and never changed by a correction."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from bulletins import corrections
from bulletins.models import AgencyPolicy, Bulletin, Receipt, Topic
from bulletins.services import authoring, reading, templates
from tests.factories import UserFactory, published_bulletin

pytestmark = pytest.mark.django_db

SIGNED = "I have read this order and will work in pairs."
CHECK = [
    {
        "question": "Can you work a post alone while this order is in force?",
        "choices": ["Yes, if my sergeant agrees", "No - every post is paired"],
        "answer": 1,
    }
]


def _form(precinct17, **extra):
    later = timezone.localtime() + timedelta(hours=36)
    return {
        "title": "All officers paired",
        "instruction": "Work in pairs. No solo posts.",
        "body": "",
        "kind": "order",
        "priority": "1",
        "units": [precinct17.pk],
        "to_sworn": "on",
        "starts": "now",
        "expires_at": later.strftime("%Y-%m-%dT%H:%M"),
        "review_hours": "72",
        **extra,
    }


def _receipt(user, bulletin, number):
    return Receipt.objects.get(user=user, bulletin=bulletin, version__number=number)


# The form


def test_a_new_bulletin_starts_with_the_agencys_statement(client, sergeant, agency):
    AgencyPolicy.objects.create(agency=agency, statement="I have read it and I will comply.")
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:create"))

    assert response.context["form"]["statement"].value() == "I have read it and I will comply."


def test_without_a_policy_the_default_statement_is_offered(client, sergeant):
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:create"))

    assert response.context["form"]["statement"].value() == AgencyPolicy.DEFAULT_STATEMENT


def test_the_form_saves_the_statement_report_and_check(client, sergeant, precinct17):
    client.force_login(sergeant)
    data = _form(
        precinct17,
        statement=SIGNED,
        implemented_from="units",
        implemented_prompt="Armed officer posted at each public entrance",
        question_1="  Can you work a post alone while this order is in force? ",
        question_1_choice_1="Yes, if my sergeant agrees",
        question_1_choice_2="",  # a gap: the choices close up, the answer follows
        question_1_choice_3="No - every post is paired",
        question_1_answer="3",
    )

    response = client.post(reverse("bulletins:create"), data)

    assert response.status_code == HTTPStatus.FOUND, response.context["form"].errors
    draft = Bulletin.objects.get()
    assert draft.statement == SIGNED
    assert (draft.implemented_from, draft.implemented_prompt) == (
        "units",
        "Armed officer posted at each public entrance",
    )
    assert draft.questions == CHECK


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"question_1": "Alone?"}, "question_1_choice_1", "Give at least two choices."),
        (
            {"question_1_choice_1": "Yes", "question_1_choice_2": "No", "question_1_answer": "1"},
            "question_1",
            "Write the question, or clear its choices.",
        ),
        (
            {"question_2": "Alone?", "question_2_choice_1": "Yes", "question_2_choice_2": "No"},
            "question_2_answer",
            "Choose which choice is correct.",
        ),
        (
            {"question_1": "Alone?", "question_1_choice_1": "Yes", "question_1_choice_2": "No",
             "question_1_answer": "4"},
            "question_1_answer",
            "The correct choice is empty: write it, or choose another.",
        ),
        (
            {"question_1": "Alone?", "question_1_choice_1": "Yes", "question_1_choice_2": "yes",
             "question_1_answer": "1"},
            "question_1_choice_1",
            "Two choices read the same: make each different.",
        ),
        (
            {"question_1": "x" * 201, "question_1_choice_1": "Yes", "question_1_choice_2": "No",
             "question_1_answer": "1"},
            "question_1",
            "Ensure this value has at most 200 characters (it has 201).",
        ),
        (
            {"kind": "advisory", "question_1": "Alone?", "question_1_choice_1": "Yes",
             "question_1_choice_2": "No", "question_1_answer": "2"},
            "question_1",
            "Only Orders are acknowledged: choose the kind Order, or clear the check of "
            "understanding.",
        ),
        ({"implemented_from": "units"}, "implemented_prompt", "Say what to report, or choose "
         "Nobody."),
        ({"implemented_prompt": "Posted"}, "implemented_from", "Choose who reports it, or clear "
         "What to report."),
        ({"kind": "advisory", "implemented_from": "everyone", "implemented_prompt": "Posted"},
         "implemented_from", "Only Orders ask for a report: choose the kind Order, or Nobody."),
        ({"implemented_from": "anyone", "implemented_prompt": "Posted"}, "implemented_from",
         "Select a valid choice. anyone is not one of the available choices."),
        ({"statement": "s" * 301}, "statement",
         "Ensure this value has at most 300 characters (it has 301)."),
    ],
)  # fmt: skip
def test_bad_settings_are_field_errors_and_nothing_is_saved(
    client, sergeant, precinct17, fields, field, message
):
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:create"), _form(precinct17, **fields))

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert message in response.context["form"].errors[field]
    assert not Bulletin.objects.exists()


def test_empty_question_blocks_are_ignored(client, sergeant, precinct17):
    client.force_login(sergeant)

    client.post(reverse("bulletins:create"), _form(precinct17, question_3_answer="2"))

    assert Bulletin.objects.get().questions == []


def test_the_service_refuses_questions_of_the_wrong_shape(sergeant, precinct17):
    from tests.factories import draft_bulletin

    with pytest.raises(ValidationError):
        draft_bulletin(sergeant, precinct17, questions=[{"question": "Alone?", "answer": 0}])

    assert not Bulletin.objects.exists()


# Versioned like the text


def test_publishing_copies_the_settings_into_the_version(sergeant, precinct17):
    order = published_bulletin(
        sergeant, precinct17, statement=SIGNED, questions=CHECK,
        implemented_from="everyone", implemented_prompt="Paired",
    )  # fmt: skip

    version = order.versions.get()

    assert (version.statement, version.questions) == (SIGNED, CHECK)
    assert (version.implemented_from, version.implemented_prompt) == ("everyone", "Paired")


def test_the_receipt_records_the_statement_of_the_version(sergeant, precinct17, officer):
    order = published_bulletin(sergeant, precinct17, statement=SIGNED)

    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())

    assert _receipt(officer, order, 1).statement == SIGNED


def test_an_empty_statement_signs_the_agencys_default(sergeant, precinct17, officer, agency):
    AgencyPolicy.objects.create(agency=agency, statement="Read, understood, will comply.")
    order = published_bulletin(sergeant, precinct17, statement="")

    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())

    assert _receipt(officer, order, 1).statement == "Read, understood, will comply."


def test_without_a_policy_the_receipt_says_the_default(sergeant, precinct17, officer):
    order = published_bulletin(sergeant, precinct17)

    reading.acknowledge(order.pk, user=officer, version_number=1, now=timezone.now())

    assert _receipt(officer, order, 1).statement == AgencyPolicy.DEFAULT_STATEMENT


def test_the_checked_path_records_the_versions_statement_too(sergeant, precinct17):
    order = published_bulletin(sergeant, precinct17, statement=SIGNED)
    newcomer = UserFactory(unit=precinct17)  # moved in after publication: no recipient row yet

    reading.acknowledge(order.pk, user=newcomer, version_number=1, now=timezone.now())

    assert _receipt(newcomer, order, 1).statement == SIGNED


def test_a_material_amendment_changes_the_statement_and_the_next_receipt(
    sergeant, precinct17, officer
):
    now = timezone.now()
    order = published_bulletin(sergeant, precinct17, statement=SIGNED, now=now)
    reading.acknowledge(order.pk, user=officer, version_number=1, now=now)

    authoring.amend_bulletin(
        order, by=sergeant, now=now, reason="Say it plainly", is_material=True,
        statement="I will not work alone.",
    )  # fmt: skip
    reading.acknowledge(order.pk, user=officer, version_number=2, now=now)

    assert list(order.versions.values_list("number", "statement")) == [
        (1, SIGNED),
        (2, "I will not work alone."),
    ]
    assert _receipt(officer, order, 1).statement == SIGNED
    assert _receipt(officer, order, 2).statement == "I will not work alone."


@pytest.mark.parametrize(
    "change",
    [
        {"statement": "I have read this order."},
        {"questions": CHECK},
        {"implemented_from": "everyone", "implemented_prompt": "Paired"},
    ],
)
def test_a_correction_never_changes_what_is_signed_or_answered(sergeant, precinct17, change):
    order = published_bulletin(sergeant, precinct17, statement=SIGNED)

    with pytest.raises(ValidationError) as refused:
        authoring.amend_bulletin(
            order, by=sergeant, now=timezone.now(), reason="Tidy", is_material=False, **change
        )

    assert refused.value.message_dict == {"is_material": [corrections.RESPONSE_MESSAGE]}
    assert order.versions.count() == 1


def _amend(order, **extra):
    return {
        "title": order.title,
        "instruction": order.instruction,
        "body": order.body,
        "priority": str(order.priority),
        "until_further_notice": "on",
        "reason": "Plainer statement",
        **extra,
    }


def test_the_amend_page_refuses_a_new_statement_as_a_correction(client, sergeant, precinct17):
    order = published_bulletin(sergeant, precinct17, statement=SIGNED)
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:amend", args=[order.pk]),
        _amend(order, statement="I read it.", is_material="no"),
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert corrections.RESPONSE_MESSAGE in response.context["form"].errors["is_material"]
    assert order.versions.count() == 1


def test_the_amend_page_publishes_a_new_check_as_a_material_change(client, sergeant, precinct17):
    order = published_bulletin(sergeant, precinct17, statement=SIGNED)
    client.force_login(sergeant)
    check = {
        "question_1": CHECK[0]["question"],
        "question_1_choice_1": CHECK[0]["choices"][0],
        "question_1_choice_2": CHECK[0]["choices"][1],
        "question_1_answer": "2",
    }

    response = client.post(
        reverse("bulletins:amend", args=[order.pk]),
        _amend(order, statement=SIGNED, is_material="yes", **check),
    )

    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert (order.version, order.ack_version, order.questions) == (2, 2, CHECK)
    assert order.versions.get(number=2).questions == CHECK


def test_an_amendment_without_the_settings_fields_keeps_them(client, sergeant, precinct17):
    """A client that never showed them (an older page, the API) does not clear them."""
    order = published_bulletin(sergeant, precinct17, statement=SIGNED, questions=CHECK)
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:amend", args=[order.pk]),
        _amend(order, instruction="Work in pairs, no solo posts.", is_material="yes"),
    )

    assert response.status_code == HTTPStatus.FOUND
    version = order.versions.get(number=2)
    assert (version.statement, version.questions) == (SIGNED, CHECK)


def test_the_bulletin_page_shows_the_versions_statement(client, sergeant, precinct17, officer):
    order = published_bulletin(sergeant, precinct17, statement=SIGNED)
    client.force_login(officer)

    page = client.get(reverse("bulletins:detail", args=[order.pk])).content.decode()

    assert f'<p class="statement">{SIGNED}</p>' in page


# Templates


def _template(admin, agency, **settings):
    return templates.create_template(
        by=admin, now=timezone.now(), agency=agency, name="All officers paired",
        title="All officers paired", instruction="Work in pairs.", body="", kind="order",
        priority=1, duration=None, review_interval=timedelta(hours=72), to_sworn=True,
        to_auxiliary=True, to_civilian=True, supervisors_only=False, **settings,
    )  # fmt: skip


def test_a_bulletin_started_from_a_template_gets_its_settings(client, admin, agency, sergeant):
    topic = Topic.objects.create(agency=agency, name="Patrol staffing")
    template = _template(
        admin, agency, statement=SIGNED, questions=CHECK, implemented_from="supervisors",
        implemented_prompt="Pairs posted", topic=topic,
    )  # fmt: skip
    client.force_login(sergeant)

    form = client.get(reverse("bulletins:create"), {"template": template.pk}).context["form"]

    assert form["statement"].value() == SIGNED
    assert form["implemented_from"].value() == "supervisors"
    assert form["implemented_prompt"].value() == "Pairs posted"
    assert form["question_1"].value() == CHECK[0]["question"]
    assert form["question_1_choice_2"].value() == "No - every post is paired"
    assert form["question_1_answer"].value() == "2"
    assert form.initial["topic"] == topic.pk


def test_a_template_without_a_statement_starts_with_the_agencys(client, admin, agency, sergeant):
    AgencyPolicy.objects.create(agency=agency, statement="Read and understood.")
    template = _template(admin, agency)
    client.force_login(sergeant)

    form = client.get(reverse("bulletins:create"), {"template": template.pk}).context["form"]

    assert form["statement"].value() == "Read and understood."


def test_the_template_form_saves_the_settings_as_a_new_version(client, admin, agency):
    template = _template(admin, agency)
    client.force_login(admin)
    data = {
        "name": "All officers paired",
        "title": "All officers paired",
        "instruction": "Work in pairs.",
        "body": "",
        "kind": "order",
        "priority": "1",
        "until_further_notice": "on",
        "review_hours": "72",
        "to_sworn": "on",
        "to_auxiliary": "on",
        "to_civilian": "on",
        "statement": SIGNED,
        "question_1": CHECK[0]["question"],
        "question_1_choice_1": CHECK[0]["choices"][0],
        "question_1_choice_2": CHECK[0]["choices"][1],
        "question_1_answer": "2",
    }

    response = client.post(reverse("bulletins:template_edit", args=[template.pk]), data)

    assert response.status_code == HTTPStatus.FOUND, response.context["form"].errors
    version = templates.current_version(template)
    assert (version.number, version.statement, version.questions) == (2, SIGNED, CHECK)


def test_the_template_form_refuses_a_bad_check(client, admin, agency):
    template = _template(admin, agency)
    client.force_login(admin)

    response = client.post(
        reverse("bulletins:template_edit", args=[template.pk]),
        {"name": "All officers paired", "title": "T", "instruction": "I", "kind": "order",
         "priority": "1", "until_further_notice": "on", "review_hours": "72", "to_sworn": "on",
         "question_1": "Alone?", "question_1_choice_1": "Yes"},
    )  # fmt: skip

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "Give at least two choices." in response.context["form"].errors["question_1_choice_1"]
    assert templates.current_version(template).number == 1

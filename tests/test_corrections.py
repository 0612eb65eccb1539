"""Non-material amendments (corrections): what they may change, and who sees and hears of them."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import dateformat, timezone

from bulletins import corrections, notifications
from bulletins.models import BulletinVersion, NotificationEvent
from bulletins.services import authoring, chasing, reading
from bulletins.tasks import send_notifications_task
from portal.models import AuditEvent
from tests.factories import published_bulletin

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)
API = "/api/v1"
MATERIAL = "This changes what officers must do: publish it as a change that needs acknowledging"
STAND_BY = "Keep TWO officers on stand-by"


def deliver():
    """Fan out and send whatever is waiting: the messages of this run."""
    mail.outbox.clear()
    send_notifications_task.apply().get()
    return list(mail.outbox)


def sent_to(person, messages, subject):
    return [m for m in messages if m.to == [person.email] and m.subject.startswith(subject)]


def local(moment):
    return dateformat.format(timezone.localtime(moment), "D d M H:i")


def amend(bulletin, by, *, material=False, now=None, reason="Typo", **fields):
    return authoring.amend_bulletin(
        bulletin, by=by, now=now or timezone.now(), reason=reason, is_material=material, **fields
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Patrol Manhatan South", "Patrol Manhattan South"),
        ("Officers recieve the brief", "Officers receive the brief"),
        ("Work in pairs.", "Work in pairs"),
        ("work in PAIRS", "Work in pairs"),
        ("Wear teh vest, chek radios, sign teh log", "Wear the vest, check radios, sign the log"),
    ],
)
def test_spelling_sized_edits_are_corrections(old, new):
    assert corrections.is_correction([old], [new])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (STAND_BY, "Stand-by posts are cancelled"),
        ("Keep two officers on post", "Keep too officers on post"),
        ("Meet at gate 1730", "Meet at gate 1830"),
        ("Do not enter the yard", "Do now enter the yard"),
        ("The order is lifted", "The order is lifed"),
        ("Patrol north sector", "Patrol south sector"),
        ("Patrol the sector", "Patrol the whole sector"),
        ("Patrol the whole sector", "Patrol the sector"),
        ("Teh vest, chek radios, sign teh lgo", "The vest, check radios, sign the log"),
        ("Phase II applies", "Phase III applies"),
        ("Officers armed", "Officers unarmed"),
    ],
    ids=[
        "the issue's example",
        "a number word",
        "a number",
        "a negation",
        "a cancelling word",
        "a different word",
        "a word added",
        "a word taken out",
        "four words",
        "a roman numeral",
        "two letters in a short word",
    ],
)
def test_anything_more_is_not_a_correction(old, new):
    assert not corrections.is_correction([old], [new])


def test_the_words_of_all_three_texts_count_together():
    old = ["Teh order", "Wear teh vest", "Chek radios, sign teh log"]

    assert corrections.is_correction(old[:2], ["The order", "Wear the vest"])
    assert not corrections.is_correction(
        old, ["The order", "Wear the vest", "Check radios, sign the log"]
    )


def test_a_correction_that_changes_the_order_is_refused_and_writes_nothing(sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, instruction=STAND_BY)
    audit_before = AuditEvent.objects.count()

    with pytest.raises(ValidationError) as refused:
        amend(bulletin, sergeant, instruction="Stand-by posts are cancelled")

    assert refused.value.message_dict == {"is_material": [MATERIAL]}
    bulletin.refresh_from_db()
    assert (bulletin.version, bulletin.instruction) == (1, STAND_BY)
    assert AuditEvent.objects.count() == audit_before
    assert not NotificationEvent.objects.exclude(event="published").exists()


@pytest.mark.parametrize(
    "change",
    [{"priority": 3}, {"kind": "advisory"}, {"effective_at": "later"}],
    ids=["priority", "kind", "start"],
)
def test_priority_kind_and_start_are_never_a_correction(sergeant, precinct17, change):
    bulletin = published_bulletin(sergeant, precinct17)
    if change.get("effective_at") == "later":
        change = {"effective_at": bulletin.effective_at + timedelta(hours=1)}

    with pytest.raises(ValidationError) as refused:
        amend(bulletin, sergeant, **change)

    assert refused.value.message_dict == {"is_material": [MATERIAL]}
    assert BulletinVersion.objects.filter(bulletin=bulletin).count() == 1


def test_the_same_change_published_as_material_is_accepted(sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, instruction=STAND_BY)

    amended = amend(bulletin, sergeant, material=True, instruction="Stand-by posts are cancelled")

    assert (amended.version, amended.ack_version) == (2, 2)


@pytest.mark.parametrize("material", [False, True])
def test_an_amendment_that_changes_nothing_is_refused(sergeant, precinct17, material):
    bulletin = published_bulletin(sergeant, precinct17)

    with pytest.raises(ValidationError) as refused:
        amend(bulletin, sergeant, material=material, title=bulletin.title, priority=1)

    assert refused.value.messages[0].startswith("Nothing has changed: ")
    assert BulletinVersion.objects.filter(bulletin=bulletin).count() == 1


def test_a_spelling_fix_is_a_new_version_that_keeps_acknowledgements(sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, instruction="Patrol Manhatan South.")

    amended = amend(bulletin, sergeant, instruction="Patrol Manhattan South.")

    assert (amended.version, amended.ack_version) == (2, 1)
    assert amended.instruction == "Patrol Manhattan South."


def test_the_api_refuses_a_correction_that_changes_the_order(client, sergeant, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, instruction=STAND_BY)
    client.force_login(sergeant)

    response = client.post(
        f"{API}/bulletins/{bulletin.pk}/amend",
        {"reason": "Typo", "is_material": False, "instruction": "Stand-by posts are cancelled"},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["errors"] == [{"field": "is_material", "message": MATERIAL}]
    assert BulletinVersion.objects.filter(bulletin=bulletin).count() == 1


def amend_form(bulletin, **overrides):
    data = {
        "title": bulletin.title,
        "instruction": bulletin.instruction,
        "body": bulletin.body,
        "priority": str(bulletin.priority),
        "until_further_notice": "on",
        "is_material": "no",
        "reason": "Typo",
    }
    return data | overrides


def test_the_amend_form_says_the_rule_and_shows_the_refusal_on_the_choice(
    client, sergeant, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17, instruction=STAND_BY)
    client.force_login(sergeant)
    url = reverse("bulletins:amend", args=[bulletin.pk])

    form = client.get(url).content.decode()
    refused = client.post(url, amend_form(bulletin, instruction="Stand-by posts are cancelled"))
    unchanged = client.post(url, amend_form(bulletin))

    assert "at most 3 words" in form
    assert refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    page = refused.content.decode()
    assert MATERIAL in page[page.index('name="is_material"') :]
    assert "Nothing has changed: " in unchanged.content.decode()
    assert BulletinVersion.objects.filter(bulletin=bulletin).count() == 1


def test_the_amend_form_sent_back_untouched_changes_nothing(client, sergeant, precinct17):
    ends = timezone.now().replace(second=41) + timedelta(hours=36)
    bulletin = published_bulletin(sergeant, precinct17, expires_at=ends)
    client.force_login(sergeant)
    shown = timezone.localtime(ends).strftime("%Y-%m-%dT%H:%M")  # the field shows minutes

    response = client.post(
        reverse("bulletins:amend", args=[bulletin.pk]),
        amend_form(bulletin, expires_at=shown, until_further_notice=""),
    )

    assert "Nothing has changed: " in response.content.decode()
    assert BulletinVersion.objects.filter(bulletin=bulletin).count() == 1


def test_an_officer_who_acknowledged_sees_what_the_correction_changed(
    client, sergeant, officer, precinct17
):
    bulletin = published_bulletin(sergeant, precinct17, instruction="Patrol Manhatan South.")
    reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=timezone.now())
    amend(bulletin, sergeant, instruction="Patrol Manhattan South.", reason="Spelling")
    corrected_at = bulletin.versions.get(number=2).created_at
    client.force_login(officer)

    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()

    assert f"Corrected {local(corrected_at)} (New York time): what changed" in page
    assert "<del>Manhatan</del>" in page and "<ins>Manhattan</ins>" in page
    assert "Why: Spelling" in page
    assert "You acknowledged version 1" in page
    assert "Version 2 is a correction of what you acknowledged" in page


def test_every_amendment_is_in_the_history_with_what_changed(client, sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, instruction="Patrol Manhatan South.")
    amend(bulletin, sergeant, material=True, instruction="Patrol Manhatan North.", reason="Moved")
    amend(bulletin, sergeant, instruction="Patrol Manhattan North.")
    client.force_login(officer)

    page = client.get(reverse("bulletins:detail", args=[bulletin.pk])).content.decode()

    history = page[page.index('id="history-heading"') :]
    assert "What changed in version 2" in history and "<ins>North.</ins>" in history
    assert "What changed in version 3" in history and "<ins>Manhattan</ins>" in history
    assert page.count("(New York time): what changed") == 1  # only the correction of v2


def test_a_correction_tells_those_who_acknowledged_once(sergeant, officer, auxiliary, precinct17):
    bulletin = published_bulletin(sergeant, precinct17, instruction="Patrol Manhatan South.")
    reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=timezone.now())
    reading.acknowledge(bulletin.pk, user=sergeant, version_number=1, now=timezone.now())
    deliver()

    amend(bulletin, sergeant, instruction="Patrol Manhattan South.")
    sent = deliver()
    again = deliver()

    # not the one who has not acknowledged, nor the one who made the correction
    assert [message.to for message in sent] == [[officer.email]]
    message = sent[0]
    assert message.subject == f"Corrected: {bulletin.title}"
    assert '"Manhatan" now reads "Manhattan"' in message.body
    assert "your acknowledgement carries over" in message.body
    assert again == []


def test_an_extension_tells_those_who_acknowledged_the_new_end_once(sergeant, officer, precinct17):
    now = timezone.now()
    bulletin = published_bulletin(sergeant, precinct17, now=now, expires_at=now + 36 * 60 * MINUTE)
    reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=now)
    deliver()
    new_end = now + 72 * 60 * MINUTE

    amended = amend(bulletin, sergeant, now=now + MINUTE, expires_at=new_end, reason="Extended")
    notifications.queue_correction(amended, by=sergeant, now=now + 2 * MINUTE)  # a retry
    sent = deliver() + deliver()

    assert [m.subject for m in sent] == [f"Extended to {local(new_end)}: {bulletin.title}"]
    assert sent[0].to == [officer.email]


def test_a_shorter_end_says_when_it_now_ends(sergeant, officer, precinct17):
    now = timezone.now()
    bulletin = published_bulletin(sergeant, precinct17, now=now, expires_at=now + 36 * 60 * MINUTE)
    reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=now)
    deliver()
    new_end = now + 12 * 60 * MINUTE

    amend(bulletin, sergeant, now=now + MINUTE, expires_at=new_end, reason="Shorter")

    assert sent_to(officer, deliver(), f"Now ends {local(new_end)}: ")


def test_a_material_amendment_asks_again_and_sends_no_correction(sergeant, officer, precinct17):
    bulletin = published_bulletin(sergeant, precinct17)
    reading.acknowledge(bulletin.pk, user=officer, version_number=1, now=timezone.now())

    amend(bulletin, sergeant, material=True, instruction="Work alone.", reason="Staffing")

    assert not NotificationEvent.objects.filter(event="corrected").exists()
    assert NotificationEvent.objects.filter(event="amended").count() == 1


def test_a_reminder_after_a_material_change_asks_for_the_new_version(
    admin, sergeant, officer, auxiliary, precinct17
):
    now = timezone.now()
    order = published_bulletin(admin, precinct17, now=now, priority=1)
    chasing.chase(now + 15 * MINUTE)
    first = sent_to(officer, deliver(), "Reminder - acknowledge: ")
    reading.acknowledge(order.pk, user=officer, version_number=1, now=now + 20 * MINUTE)
    amend(order, admin, material=True, now=now + 60 * MINUTE, instruction="Work alone.")
    changed_at = order.versions.get(number=2).created_at
    deliver()

    chasing.chase(now + 75 * MINUTE)
    second = sent_to(officer, deliver(), "Changed - acknowledge the new version: ")
    chasing.chase(now + 90 * MINUTE)
    escalation = sent_to(sergeant, deliver(), "New version not yet acknowledged in your command")

    assert "You have not yet acknowledged this order." in first[0].body
    changed = f"Changed on {timezone.localtime(changed_at):%a %d %b %Y %H:%M} (New York time)"
    assert f"{changed} - acknowledge the new version." in second[0].body
    assert "not yet acknowledged" not in second[0].body
    assert "have not acknowledged the new version" in escalation[0].body

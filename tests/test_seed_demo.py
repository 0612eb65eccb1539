import io
from datetime import timedelta
from http import HTTPStatus

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from bulletins.management.commands.seed_demo import DEMO_PASSWORD, DEMO_TOTP_SECRET
from portal.models import Unit, User
from tests.sign_in import sign_in, signed_in_user_id, totp_code

pytestmark = pytest.mark.django_db

DEMO_ACCOUNTS = {
    # email: (role, member class, unit)
    "officer@demo.test": ("officer", "sworn", "17th Precinct"),
    "officer2@demo.test": ("officer", "sworn", "75th Precinct"),
    "auxiliary@demo.test": ("officer", "auxiliary", "17th Precinct"),
    "sergeant@demo.test": ("supervisor", "sworn", "17th Precinct"),
    "admin@demo.test": ("admin", "sworn", "Metro Police Department"),
    "commander@demo.test": ("supervisor", "sworn", "Manhattan South"),
    "chief@demo.test": ("admin", "sworn", "Metro Police Department"),
}


def snapshot():
    people = User.objects.order_by("email")
    return (
        list(people.values_list("email", "name", "badge", "role", "unit__name", "agency__name")),
        list(Unit.objects.order_by("path").values_list("path", "name", "kind")),
    )


def seed(*args):
    call_command("seed_demo", *args, stdout=None)


def test_seed_demo_twice_gives_the_same_data():
    seed()
    first = snapshot()

    seed()

    assert snapshot() == first
    people, units = first
    assert sorted(email for email, *_ in people) == sorted(DEMO_ACCOUNTS)
    assert len(units) >= 80


def test_the_demo_agency_follows_the_story():
    seed()

    parents = {
        unit.name: Unit.objects.get_parent(unit).name
        for unit in Unit.objects.filter(kind=Unit.Kind.PRECINCT)
    }
    assert Unit.objects.get(depth=1).name == "Metro Police Department"
    assert parents["17th Precinct"] == "Manhattan South"
    assert parents["72nd Precinct"] == "Brooklyn South"
    assert parents["75th Precinct"] == "Brooklyn North"
    assert Unit.objects.filter(kind=Unit.Kind.SQUAD, name__startswith="17th Precinct").exists()


def test_demo_accounts_sign_in_with_the_demo_password_after_every_run():
    seed()
    User.objects.filter(email="officer@demo.test").update(password="!", is_active=False)

    seed()

    for email, (role, member_class, unit) in DEMO_ACCOUNTS.items():
        person = authenticate(email=email, password=DEMO_PASSWORD)
        assert person is not None, email
        assert (person.role, person.member_class, person.unit.name) == (role, member_class, unit)
        assert person.agency.name == "Metro Police Department"
        assert person.is_staff == (role == "admin")


def test_the_demo_officer_can_log_in(client):
    seed()

    assert client.login(email="officer@demo.test", password=DEMO_PASSWORD)


def test_generated_officers_are_added_once():
    seed()

    seed("--officers", "500")
    first = snapshot()
    seed("--officers", "500")

    assert snapshot() == first
    generated = User.objects.filter(email__regex=r"^officer\d{5}@demo\.test$")
    assert generated.count() == 500
    assert set(generated.values_list("member_class", flat=True)) == {
        "sworn",
        "auxiliary",
        "civilian",
    }
    assert generated.filter(role="supervisor").exists()
    assert generated.values("unit").distinct().count() > 50
    assert generated.filter(unit__kind=Unit.Kind.SQUAD).exists()


def test_generated_officers_share_the_demo_password():
    seed("--officers", "3")

    assert authenticate(email="officer00003@demo.test", password=DEMO_PASSWORD) is not None


def test_seed_demo_publishes_the_story_bulletins_once(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())

    from bulletins.models import Bulletin, Recipient

    titles = list(
        Bulletin.objects.published().filter(is_exercise=False).values_list("title", flat=True)
    )
    assert len(titles) == len(set(titles)) == 8  # and one draft awaiting approval
    drill = Bulletin.objects.get(is_exercise=True)
    assert drill.title == "Exercise: station-house lockdown drill"
    assert Recipient.objects.filter(bulletin=drill, acknowledged_at__isnull=False).count() >= 2
    pairing = Bulletin.objects.get(title__startswith="All officers paired")
    assert pairing.expires_at is None
    assert pairing.status == Bulletin.Status.IN_FORCE
    told = set(Recipient.objects.filter(bulletin=pairing).values_list("user__email", flat=True))
    assert "officer@demo.test" in told
    assert "auxiliary@demo.test" not in told
    county = Bulletin.objects.get(title="Patrols paired for 36 hours")
    assert county.expires_at - county.effective_at == timedelta(hours=36)
    intelligence = Bulletin.objects.get(kind="intelligence")
    readers = set(
        Recipient.objects.filter(bulletin=intelligence).values_list("user__email", flat=True)
    )
    assert readers == {"officer2@demo.test"}


@pytest.mark.usefixtures("own_cache_keys")
def test_seed_demo_sets_what_readers_sign_and_answer_once():
    from bulletins.models import (
        AgencyPolicy,
        Bulletin,
        BulletinTemplate,
        CannotComplyReason,
        Topic,
    )

    seed()
    seed()

    agency = Unit.objects.get(depth=1)
    assert AgencyPolicy.objects.get(agency=agency).statement == AgencyPolicy.DEFAULT_STATEMENT
    reasons = CannotComplyReason.objects.filter(agency=agency).order_by("position")
    assert list(reasons.values_list("label", flat=True)) == [
        "No partner available", "Equipment missing", "Other",
    ]  # fmt: skip
    topics = Topic.objects.filter(agency=agency).order_by("position")
    assert list(topics.values_list("name", flat=True)) == [
        "Patrol staffing", "Auxiliary deployment", "Station security", "Vehicle checks",
        "Threat intelligence", "Crowd events",
    ]  # fmt: skip
    station = Bulletin.objects.get(title__startswith="Station houses:").versions.get()
    assert (station.implemented_from, station.implemented_prompt) == (
        "units",
        "Armed officer posted at each public entrance",
    )
    pairing = Bulletin.objects.get(title__startswith="All officers paired").versions.get()
    [check] = pairing.questions
    assert check["question"] == "Can you work a post alone while this order is in force?"
    assert check["choices"][check["answer"]] == "No - every post is paired"
    template = BulletinTemplate.objects.get(name="All officers paired").versions.get()
    assert template.questions == pairing.questions
    station_template = BulletinTemplate.objects.get(name="Station-house security").versions.get()
    assert station_template.implemented_from == "units"


def test_seed_demo_enrols_all_five_demo_sign_ins_with_the_documented_secret():
    call_command("seed_demo", stdout=io.StringIO())

    client = Client()
    after_password = sign_in(client, "officer@demo.test", DEMO_PASSWORD)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(DEMO_TOTP_SECRET)})

    enrolled = Authenticator.objects.filter(type=Authenticator.Type.TOTP)
    assert DEMO_TOTP_SECRET == "OFFICERSAFETYDEMOPORTALSECRET234"
    assert sorted(enrolled.values_list("user__email", flat=True)) == sorted(DEMO_ACCOUNTS)
    assert all(DEMO_TOTP_SECRET not in str(a.data) for a in enrolled)
    assert after_password.url == reverse("mfa_authenticate")
    assert signed_in_user_id(client) == str(User.objects.get(email="officer@demo.test").pk)
    assert client.get(reverse("bulletins:feed")).status_code == HTTPStatus.OK


def test_seed_demo_tells_the_demo_totp_secret():
    out = io.StringIO()

    call_command("seed_demo", stdout=out)

    assert "OFFICERSAFETYDEMOPORTALSECRET234" in out.getvalue()
    assert "JBSWY3DPEHPK3PXP" not in out.getvalue()


def test_seed_demo_leaves_one_order_awaiting_the_commanders_approval():
    from bulletins.models import Bulletin
    from bulletins.services import approval

    seed()
    seed()

    commander = User.objects.get(email="commander@demo.test")
    waiting = list(approval.awaiting(commander))
    assert [b.title for b in waiting] == [
        "Manhattan South: guard station-house entrances on every tour"
    ]
    assert waiting[0].status == Bulletin.Status.DRAFT
    assert waiting[0].issued_by.email == "sergeant@demo.test"
    agency_wide = Bulletin.objects.get(title__startswith="All officers paired - no solo")
    assert agency_wide.approved_by.email == "chief@demo.test"

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from bulletins.models import Bulletin, BulletinVersion, Recipient
from bulletins.services import authoring
from portal.models import AuditEvent, User
from tests.factories import UserFactory, draft_bulletin, published_bulletin

pytestmark = pytest.mark.django_db


def recipients_of(bulletin):
    return set(Recipient.objects.filter(bulletin=bulletin).values_list("user__email", flat=True))


def test_publishing_resolves_the_audience_into_one_row_per_person(
    sergeant, officer, auxiliary, squad17, outsider
):
    in_squad = UserFactory(email="squad@agency.test", unit=squad17)

    bulletin = published_bulletin(sergeant, sergeant.unit)

    assert bulletin.status == Bulletin.Status.IN_FORCE
    assert recipients_of(bulletin) == {
        officer.email,
        auxiliary.email,
        sergeant.email,
        in_squad.email,
    }


def test_unit_only_audience_leaves_out_the_units_below(sergeant, officer, squad17):
    in_squad = UserFactory(email="squad@agency.test", unit=squad17)

    bulletin = published_bulletin(sergeant, sergeant.unit, subtree=False)

    assert officer.email in recipients_of(bulletin)
    assert in_squad.email not in recipients_of(bulletin)


def test_member_classes_select_recipients(sergeant, officer, auxiliary):
    bulletin = published_bulletin(
        sergeant, sergeant.unit, to_sworn=False, to_civilian=False, to_auxiliary=True
    )

    assert recipients_of(bulletin) == {auxiliary.email}


def test_supervisors_only_leaves_out_officers(sergeant, officer, admin, precinct17):
    bulletin = published_bulletin(admin, precinct17, supervisors_only=True)

    assert recipients_of(bulletin) == {sergeant.email}


def test_inactive_members_are_not_told(sergeant, officer):
    officer.is_active = False
    officer.save()

    bulletin = published_bulletin(sergeant, sergeant.unit)

    assert officer.email not in recipients_of(bulletin)


def test_reader_side_rule_agrees_with_recipient_resolution(
    admin, agency, precinct17, squad17, precinct75, officer, auxiliary, sergeant, outsider
):
    in_squad = UserFactory(email="squad@agency.test", unit=squad17)
    cases = [
        dict(units=[precinct17], subtree=True),
        dict(units=[precinct17], subtree=False),
        dict(units=[agency], subtree=True, to_sworn=False),
        dict(units=[precinct75, squad17], subtree=True, supervisors_only=False),
        dict(units=[agency], subtree=True, supervisors_only=True),
    ]
    people = [officer, auxiliary, sergeant, outsider, in_squad, admin]
    for case in cases:
        units = case.pop("units")
        bulletin = published_bulletin(admin, units, **case)

        told = recipients_of(bulletin)
        addressed = {
            p.email
            for p in people
            if Bulletin.objects.filter(pk=bulletin.pk)
            .addressed_to(p)
            .exclude(recipients__user=p)
            .exists()
            or p.email in told
        }
        by_rule = {
            p.email
            for p in people
            if Bulletin.objects.filter(
                pk=bulletin.pk, audience__in=bulletin.audience.matching(p)
            ).exists()
        }
        assert by_rule == told, case
        assert addressed == told


def test_publishing_twice_is_refused_and_changes_nothing(sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)

    with pytest.raises(ValidationError):
        authoring.publish_bulletin(bulletin, by=sergeant, now=timezone.now())

    assert bulletin.versions.count() == 1
    assert Recipient.objects.filter(bulletin=bulletin).count() == 2


def test_supervisor_cannot_address_a_unit_outside_their_scope(settings, sergeant, precinct75):
    settings.APPROVAL_REQUIRED_FOR = "none"  # else he may, for an approver (test_approval)
    with pytest.raises(ValidationError) as error:
        draft_bulletin(sergeant, precinct75)

    assert "Outside your command" in str(error.value)
    assert not Bulletin.objects.exists()


def test_officer_cannot_author(officer):
    with pytest.raises(ValidationError):
        draft_bulletin(officer, officer.unit)

    assert not Bulletin.objects.exists()


def test_end_before_start_is_refused(sergeant):
    now = timezone.now()

    with pytest.raises(ValidationError) as error:
        draft_bulletin(sergeant, sergeant.unit, now=now, expires_at=now - timedelta(hours=1))

    assert "expires_at" in error.value.message_dict
    assert not Bulletin.objects.exists()


def test_scheduled_bulletin_is_not_in_force_until_its_time(sergeant, officer):
    now = timezone.now()
    later = now + timedelta(hours=2)

    bulletin = published_bulletin(sergeant, sergeant.unit, now=now, effective_at=later)

    assert bulletin.status == Bulletin.Status.SCHEDULED
    assert not Bulletin.objects.in_force(now).filter(pk=bulletin.pk).exists()
    assert Bulletin.objects.in_force(later).filter(pk=bulletin.pk).exists()


def test_fixed_term_bulletin_leaves_in_force_at_its_end_by_the_clock(sergeant):
    now = timezone.now()
    bulletin = published_bulletin(
        sergeant, sergeant.unit, now=now, expires_at=now + timedelta(hours=36)
    )

    assert Bulletin.objects.in_force(now + timedelta(hours=35)).filter(pk=bulletin.pk).exists()
    assert not Bulletin.objects.in_force(now + timedelta(hours=36)).filter(pk=bulletin.pk).exists()
    assert Bulletin.objects.ended(now + timedelta(hours=36)).filter(pk=bulletin.pk).exists()


def test_material_amendment_makes_a_new_version_that_must_be_acknowledged(sergeant):
    bulletin = published_bulletin(sergeant, sergeant.unit)

    amended = authoring.amend_bulletin(
        bulletin,
        by=sergeant,
        now=timezone.now(),
        reason="Auxiliaries too",
        is_material=True,
        title="All members paired",
    )

    assert amended.version == 2
    assert amended.ack_version == 2
    assert amended.title == "All members paired"
    first, second = BulletinVersion.objects.filter(bulletin=bulletin)
    assert first.title != second.title
    assert first.content_hash != second.content_hash
    assert second.reason == "Auxiliaries too"


def test_non_material_amendment_carries_acknowledgements_over(sergeant):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    new_end = timezone.now() + timedelta(days=2)

    amended = authoring.amend_bulletin(
        bulletin,
        by=sergeant,
        now=timezone.now(),
        reason="Extended",
        is_material=False,
        expires_at=new_end,
    )

    assert amended.version == 2
    assert amended.ack_version == 1
    assert amended.expires_at == new_end


def test_amendment_needs_a_reason(sergeant):
    bulletin = published_bulletin(sergeant, sergeant.unit)

    with pytest.raises(ValidationError):
        authoring.amend_bulletin(
            bulletin, by=sergeant, now=timezone.now(), reason="  ", is_material=True, title="X"
        )

    assert bulletin.versions.count() == 1


def test_lift_ends_it_now_with_reason_and_closes_open_obligations(sergeant, officer):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    now = timezone.now()

    authoring.lift_bulletin(bulletin, by=sergeant, now=now, reason="Threat assessed as over")

    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.LIFTED
    assert bulletin.lift_reason == "Threat assessed as over"
    assert bulletin.lifted_by == sergeant
    assert not Bulletin.objects.in_force(now).filter(pk=bulletin.pk).exists()
    told = Recipient.objects.filter(bulletin=bulletin).exclude(user=sergeant)  # issuer: acked
    assert {r.obligation_at(now) for r in told} == {"ended before acknowledged"}


def test_lifting_twice_is_refused(sergeant):
    bulletin = published_bulletin(sergeant, sergeant.unit)
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Over")

    with pytest.raises(ValidationError):
        authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="Again")

    assert AuditEvent.objects.filter(action="bulletin.lift").count() == 1


def test_supervisor_cannot_lift_an_agency_wide_bulletin(admin, agency, sergeant):
    bulletin = published_bulletin(admin, agency)

    with pytest.raises(PermissionDenied):
        authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="No")

    bulletin.refresh_from_db()
    assert bulletin.status == Bulletin.Status.IN_FORCE


def test_every_transition_is_audited(sergeant):
    bulletin = draft_bulletin(sergeant, sergeant.unit)
    authoring.publish_bulletin(bulletin, by=sergeant, now=timezone.now())
    authoring.amend_bulletin(
        bulletin,
        by=sergeant,
        now=timezone.now(),
        reason="r",
        is_material=False,
        expires_at=timezone.now() + timedelta(days=1),
    )
    authoring.lift_bulletin(bulletin, by=sergeant, now=timezone.now(), reason="r")

    actions = list(
        AuditEvent.objects.filter(object_id=str(bulletin.pk))
        .order_by("id")
        .values_list("action", "actor__email", "object_version")
    )
    assert actions == [
        ("bulletin.create", sergeant.email, None),
        ("bulletin.publish", sergeant.email, 1),
        ("bulletin.acknowledge", sergeant.email, 1),  # the issuer, told: counted at publication
        ("bulletin.amend", sergeant.email, 2),
        ("bulletin.lift", sergeant.email, 2),
    ]


def test_person_moved_into_an_audience_unit_is_addressed(sergeant, precinct17, precinct75):
    mover = UserFactory(email="mover@agency.test", unit=precinct75)
    bulletin = published_bulletin(sergeant, precinct17)
    assert not Bulletin.objects.in_force(timezone.now()).addressed_to(mover).exists()

    User.objects.filter(pk=mover.pk).update(unit=precinct17)
    mover.refresh_from_db()

    assert (
        Bulletin.objects.in_force(timezone.now())
        .addressed_to(mover)
        .filter(pk=bulletin.pk)
        .exists()
    )

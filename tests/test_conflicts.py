"""Orders on one topic at two levels of command: the warning, the author's word, the higher
issuer told, the overview's pairs (issue "Command governance", related and conflicting orders)."""

from http import HTTPStatus

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from bulletins import conflicts, notifications, permissions
from bulletins.models import Bulletin, Notification, NotificationEvent, TemplateVersion, Topic
from bulletins.services import authoring, templates
from portal.models import User
from tests.factories import UserFactory, draft_bulletin, make_unit, published_bulletin
from tests.test_bulletin_views import bulletin_form, text_of

pytestmark = pytest.mark.django_db

PAIRING = "All officers paired - no solo posts"
FOOT_POSTS = "17th Precinct: paired foot posts on 5th Avenue"
WARNING = "In force from the department on this topic:"


@pytest.fixture(autouse=True)
def publish_alone(settings):
    """The second pair of eyes is tested on its own (test_approval): here authors publish."""
    settings.APPROVAL_REQUIRED_FOR = "none"


@pytest.fixture
def staffing(agency):
    return Topic.objects.create(agency=agency, name="Patrol staffing", position=1)


@pytest.fixture
def vehicles(agency):
    return Topic.objects.create(agency=agency, name="Vehicle checks", position=4)


@pytest.fixture
def department_order(admin, agency, staffing):
    """The department's pairing order, in force for every member."""
    return published_bulletin(admin, agency, title=PAIRING, topic=staffing)


def precinct_draft(sergeant, precinct17, topic, **fields):
    return draft_bulletin(sergeant, precinct17, title=FOOT_POSTS, topic=topic, **fields)


def deliver(event):
    notifications.fan_out(event)
    notifications.send_pending()


# -- The rule -----------------------------------------------------------------------------------


def test_a_precinct_order_on_the_topic_finds_the_department_order(
    department_order, sergeant, precinct17, staffing
):
    draft = precinct_draft(sergeant, precinct17, staffing)

    higher = conflicts.higher_orders(draft, timezone.now(), viewer=sergeant)

    assert higher == [department_order]
    assert higher[0].command == "the department"


def test_a_borough_order_is_named_by_its_unit(admin, manhattan, sergeant, precinct17, staffing):
    borough = published_bulletin(admin, manhattan, title="Patrols paired for 36 hours",
                                 topic=staffing)  # fmt: skip
    draft = precinct_draft(sergeant, precinct17, staffing)

    higher = conflicts.higher_orders(draft, timezone.now(), viewer=sergeant)

    assert [(order, order.command) for order in higher] == [(borough, "Manhattan South")]


def same_level(admin, agency, precinct17, staffing, vehicles):
    return published_bulletin(admin, precinct17, title="Another 17th order", topic=staffing)


def lower_level(admin, agency, precinct17, staffing, vehicles):
    squad = make_unit("17th Squad", parent=precinct17, kind="squad")
    return published_bulletin(admin, squad, title="Squad order", topic=staffing)


def other_topic(admin, agency, precinct17, staffing, vehicles):
    return published_bulletin(admin, agency, title="Vehicle checks", topic=vehicles)


def advisory(admin, agency, precinct17, staffing, vehicles):
    return published_bulletin(admin, agency, title="Advisory", topic=staffing, kind="advisory")


def exercise(admin, agency, precinct17, staffing, vehicles):
    return published_bulletin(admin, agency, title="Drill", topic=staffing, is_exercise=True)


def other_classes(admin, agency, precinct17, staffing, vehicles):
    return published_bulletin(
        admin, agency, title="Civilians", topic=staffing, to_sworn=False, to_auxiliary=False
    )


def lifted(admin, agency, precinct17, staffing, vehicles):
    order = published_bulletin(admin, agency, title="Lifted pairing", topic=staffing)
    return authoring.lift_bulletin(order, by=admin, now=timezone.now(), reason="Threat over")


@pytest.mark.parametrize(
    "existing",
    [same_level, lower_level, other_topic, advisory, exercise, other_classes, lifted],
    ids=lambda f: f.__name__,
)
def test_no_higher_order_is_found_for(
    existing, admin, agency, sergeant, precinct17, staffing, vehicles
):
    existing(admin, agency, precinct17, staffing, vehicles)
    draft = precinct_draft(sergeant, precinct17, staffing, to_civilian=False)

    assert conflicts.higher_orders(draft, timezone.now(), viewer=sergeant) == []


def test_an_order_for_other_member_classes_is_not_higher(admin, agency, precinct17, staffing):
    published_bulletin(admin, agency, title="Civilians", topic=staffing, to_sworn=False,
                       to_auxiliary=False)  # fmt: skip
    draft = draft_bulletin(admin, precinct17, title=FOOT_POSTS, topic=staffing, to_civilian=False)
    civilians_too = draft_bulletin(admin, precinct17, title="All of the 17th", topic=staffing)

    assert conflicts.higher_orders(draft, timezone.now(), viewer=admin) == []
    assert conflicts.higher_orders(draft, timezone.now()) == []
    assert len(conflicts.higher_orders(civilians_too, timezone.now(), viewer=admin)) == 1


def test_a_department_order_is_not_under_a_precinct_order(admin, agency, sergeant, precinct17,
                                                          staffing):  # fmt: skip
    published_bulletin(sergeant, precinct17, title=FOOT_POSTS, topic=staffing)
    draft = draft_bulletin(admin, agency, title=PAIRING, topic=staffing)

    assert conflicts.higher_orders(draft, timezone.now(), viewer=admin) == []


def test_an_advisory_or_a_bulletin_without_topic_is_never_under_an_order(
    department_order, sergeant, precinct17, staffing
):
    advisory = precinct_draft(sergeant, precinct17, staffing, kind="advisory")
    no_topic = precinct_draft(sergeant, precinct17, None)

    assert conflicts.higher_orders(advisory, timezone.now(), viewer=sergeant) == []
    assert conflicts.higher_orders(no_topic, timezone.now(), viewer=sergeant) == []


def test_an_exercise_is_compared_with_real_orders_too(
    department_order, sergeant, precinct17, staffing
):
    drill = precinct_draft(sergeant, precinct17, staffing, is_exercise=True)

    assert conflicts.higher_orders(drill, timezone.now(), viewer=sergeant) == [department_order]


# -- Never reveals an order the author may not see ----------------------------------------------


def test_an_order_the_author_may_not_open_is_never_shown_nor_asked_about(
    client, admin, agency, sergeant, precinct17, staffing
):
    hidden = published_bulletin(
        admin, agency, title="Auxiliaries: no field posts", topic=staffing,
        to_sworn=False, to_civilian=False,
    )  # fmt: skip
    published_bulletin(
        admin, agency, title="Restricted: threat to paired posts", topic=staffing,
        kind="intelligence", to_sworn=False, to_civilian=False,
    )  # fmt: skip
    client.force_login(sergeant)
    assert not Bulletin.objects.filter(pk=hidden.pk).addressed_to(sergeant).exists()

    response = client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], title=FOOT_POSTS, topic=staffing.pk),
    )

    assert response.status_code == HTTPStatus.FOUND
    draft = Bulletin.objects.get(title=FOOT_POSTS)
    preview = client.get(reverse("bulletins:preview", args=[draft.pk]))
    assert "Auxiliaries: no field posts" not in preview.text
    assert "Restricted" not in preview.text
    assert "does not relax" not in preview.text
    authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())  # not asked to tick


# -- The form and the preview -------------------------------------------------------------------


def test_the_form_shows_the_higher_order_and_asks_for_the_tick(
    client, department_order, sergeant, precinct17, staffing
):
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], title=FOOT_POSTS, topic=staffing.pk),
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert f"{WARNING} {PAIRING}" in text_of(response)
    assert reverse("bulletins:detail", args=[department_order.pk]) in response.text
    assert "does_not_relax" in response.context["form"].errors
    assert not Bulletin.objects.filter(title=FOOT_POSTS).exists()


def test_with_the_tick_the_draft_is_saved_and_the_preview_shows_the_higher_order(
    client, department_order, sergeant, precinct17, staffing
):
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:create"),
        bulletin_form([precinct17], title=FOOT_POSTS, topic=staffing.pk, does_not_relax="on"),
    )

    draft = Bulletin.objects.get(title=FOOT_POSTS)
    assert response.status_code == HTTPStatus.FOUND
    assert (draft.topic, draft.does_not_relax) == (staffing, True)
    preview = text_of(client.get(reverse("bulletins:preview", args=[draft.pk])))
    assert f"{WARNING} {PAIRING}" in preview
    assert "You ticked My order does not relax it" in preview


def test_the_form_offers_only_the_agencys_topics_not_archived(client, sergeant, staffing, agency):
    Topic.objects.create(agency=agency, name="Crowd events (old)", is_archived=True)
    client.force_login(sergeant)

    form = client.get(reverse("bulletins:create")).context["form"]

    assert list(form.fields["topic"].queryset) == [staffing]


def test_a_topic_of_another_agency_is_refused_with_a_field_error(
    client, sergeant, precinct17, staffing
):
    other = Topic.objects.create(agency=make_unit("County Police"), name="Patrol staffing")
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:create"), bulletin_form([precinct17], topic=other.pk))

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "topic" in response.context["form"].errors
    assert not Bulletin.objects.exists()


def test_the_bulletin_page_shows_its_topic(client, department_order, officer):
    client.force_login(officer)

    page = text_of(client.get(reverse("bulletins:detail", args=[department_order.pk])))

    assert "Topic: Patrol staffing" in page


def test_a_bulletin_started_from_a_template_gets_its_topic(client, admin, agency, staffing):
    template = templates.create_template(
        by=admin, now=timezone.now(), agency=agency, name="All officers paired", title=PAIRING,
        instruction="Work in pairs.", body="", kind="order", priority=1, duration=None,
        to_sworn=True, to_auxiliary=False, to_civilian=False, supervisors_only=False,
        topic=staffing,
    )  # fmt: skip
    version = template.versions.get()
    client.force_login(admin)

    form = client.get(reverse("bulletins:create"), {"template": template.pk}).context["form"]

    assert version.topic == staffing
    assert form["topic"].value() == staffing.pk


# -- Publishing: refused without the tick, the higher issuer told --------------------------------


def test_publishing_without_the_tick_is_refused_with_a_clear_message(
    department_order, sergeant, precinct17, staffing
):
    draft = precinct_draft(sergeant, precinct17, staffing)

    with pytest.raises(ValidationError) as refused:
        authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    message = " ".join(refused.value.messages)
    assert PAIRING in message and "My order does not relax it" in message
    draft.refresh_from_db()
    assert draft.status == Bulletin.Status.DRAFT
    assert not NotificationEvent.objects.filter(event=NotificationEvent.Event.CONFLICT).exists()


def test_the_publish_button_says_why_it_refused(
    client, department_order, sergeant, precinct17, staffing
):
    draft = precinct_draft(sergeant, precinct17, staffing)
    client.force_login(sergeant)

    response = client.post(reverse("bulletins:publish", args=[draft.pk]), follow=True)

    assert "My order does not relax it" in text_of(response)
    draft.refresh_from_db()
    assert draft.status == Bulletin.Status.DRAFT


def test_on_publication_the_higher_orders_issuer_is_told_once(
    department_order, admin, sergeant, precinct17, staffing, django_capture_on_commit_callbacks
):
    draft = precinct_draft(sergeant, precinct17, staffing, does_not_relax=True)

    with django_capture_on_commit_callbacks() as callbacks:
        lower = authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())
    conflict = NotificationEvent.objects.get(event=NotificationEvent.Event.CONFLICT)
    deliver(conflict)
    deliver(conflict)

    assert (conflict.bulletin, conflict.key) == (department_order, f"b{lower.pk}")
    assert conflict.detail["bulletin"] == lower.pk
    assert len(callbacks) >= 1
    assert list(Notification.objects.filter(event=conflict).values_list("user", flat=True)) == [
        admin.pk
    ]
    [email] = [m for m in mail.outbox if "lower command" in m.subject]
    assert email.to == [admin.email]
    assert email.subject == (
        f"A lower command's order on Patrol staffing: 17th Precinct: {FOOT_POSTS}"
    )
    assert reverse("bulletins:detail", args=[lower.pk]) in email.body


def test_an_issuer_who_left_is_replaced_by_their_units_supervisors(
    agency, manhattan, sergeant, precinct17, staffing
):
    borough_chief = UserFactory(unit=manhattan, role=User.Role.SUPERVISOR)
    deputy = UserFactory(unit=manhattan, role=User.Role.SUPERVISOR)
    borough = published_bulletin(borough_chief, manhattan, title="Borough pairing",
                                 topic=staffing)  # fmt: skip
    User.objects.filter(pk=borough_chief.pk).update(is_active=False)
    draft = precinct_draft(sergeant, precinct17, staffing, does_not_relax=True)

    authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    conflict = NotificationEvent.objects.get(bulletin=borough, event="conflict")
    assert set(notifications.addressees(conflict)) == {deputy}


def test_publishing_without_a_higher_order_tells_nobody(sergeant, precinct17, staffing):
    draft = precinct_draft(sergeant, precinct17, staffing)

    authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())

    assert not NotificationEvent.objects.filter(event=NotificationEvent.Event.CONFLICT).exists()


# -- The command overview -----------------------------------------------------------------------


def test_the_overview_lists_the_pair(client, department_order, admin, sergeant, precinct17,
                                     staffing):  # fmt: skip
    lower = published_bulletin(sergeant, precinct17, title=FOOT_POSTS, topic=staffing,
                               does_not_relax=True)  # fmt: skip
    client.force_login(admin)

    page = text_of(client.get(reverse("bulletins:overview")))

    assert "Orders on the same topic in force at two levels" in page
    assert f"Patrol staffing : {PAIRING} (from the department) → {FOOT_POSTS}" in page
    pairs = conflicts.topic_pairs(admin, timezone.now())
    assert [(p.higher, p.lower) for p in pairs] == [(department_order, lower)]


def test_the_overview_has_no_pairs_section_without_pairs(client, department_order, admin):
    client.force_login(admin)

    page = text_of(client.get(reverse("bulletins:overview")))

    assert "Orders on the same topic in force at two levels" not in page


def test_the_overviews_pairs_cost_three_queries_for_many_pairs(
    client, admin, agency, manhattan, precinct17, precinct75, staffing, vehicles,
    django_assert_max_num_queries,
):  # fmt: skip
    published_bulletin(admin, agency, title=PAIRING, topic=staffing)
    for unit in (manhattan, precinct17, precinct75):
        for topic in (staffing, vehicles):
            published_bulletin(admin, unit, title=f"{unit.name} {topic.name}", topic=topic,
                               does_not_relax=True)  # fmt: skip
    published_bulletin(admin, agency, title="Vehicle checks", topic=vehicles)
    admin.has_perm(permissions.AUTHOR)  # the permissions are read once per request

    with django_assert_max_num_queries(3):
        pairs = conflicts.topic_pairs(admin, timezone.now())

    # The department above each borough and precinct, the borough above the 17th, per topic.
    assert len(pairs) == 8
    client.force_login(admin)
    response = client.get(reverse("bulletins:overview"))
    assert len(response.context["topic_pairs"]) == 8


# -- The demo -----------------------------------------------------------------------------------


def test_the_demo_has_topics_and_a_pair_at_two_levels(settings):
    import io

    from django.core.management import call_command

    settings.APPROVAL_REQUIRED_FOR = "beyond-own-command"  # the demo's approvers approve

    call_command("seed_demo", stdout=io.StringIO())

    topics = dict(Bulletin.objects.values_list("title", "topic__name"))
    assert topics["All officers paired - no solo posts until further notice"] == "Patrol staffing"
    assert topics["Auxiliary officers: do not report for field patrol"] == "Auxiliary deployment"
    assert topics["Station houses: armed officer posted at every entrance"] == "Station security"
    assert topics["Check department vehicles for sabotage before every tour"] == "Vehicle checks"
    borough = Bulletin.objects.get(title="Patrols paired for 36 hours")
    assert borough.does_not_relax
    [pair] = conflicts.topic_pairs(User.objects.get(email="admin@demo.test"), timezone.now())
    assert (pair.higher.title, pair.lower) == (
        "All officers paired - no solo posts until further notice",
        borough,
    )
    assert NotificationEvent.objects.filter(
        event="conflict", bulletin=pair.higher, key=f"b{borough.pk}"
    ).exists()
    template_topics = {v.template.name: v.topic.name for v in TemplateVersion.objects.all()}
    assert template_topics["All officers paired"] == "Patrol staffing"
    assert template_topics["Vehicle check"] == "Vehicle checks"

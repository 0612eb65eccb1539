"""Issue 21, templates: admins keep versioned bulletin templates in the portal's layout; the New
bulletin page starts from one, and the draft records the version it started from."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Bulletin, BulletinTemplate, TemplateVersion
from bulletins.services import authoring, templates
from portal.models import AuditEvent, User
from tests.factories import UserFactory, make_unit
from tests.test_bulletin_views import bulletin_form

pytestmark = pytest.mark.django_db

OK, FOUND = HTTPStatus.OK, HTTPStatus.FOUND
FORBIDDEN, NOT_FOUND = HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND
INVALID = HTTPStatus.UNPROCESSABLE_ENTITY

CONTENT = {
    "title": "All officers paired - no solo posts",
    "instruction": "Work in pairs on every post. No solo posts.",
    "body": "All officers will be **paired up**.",
    "kind": "order",
    "priority": 1,
    "duration": None,
    "review_interval": timedelta(hours=48),
    "to_sworn": True,
    "to_auxiliary": False,
    "to_civilian": False,
    "supervisors_only": False,
}


@pytest.fixture
def pairing_template(admin, agency, precinct17, manhattan):
    return templates.create_template(
        by=admin,
        now=timezone.now(),
        agency=agency,
        name="All officers paired",
        suggested_units=[manhattan, precinct17],
        **CONTENT,
    )


@pytest.fixture
def other_agency():
    return make_unit("Nassau County PD")


@pytest.fixture
def other_admin(other_agency):
    return UserFactory(email="admin@nassau.test", name="Nassau Admin", unit=other_agency,
                       role=User.Role.ADMIN)  # fmt: skip


@pytest.fixture
def nassau_template(other_admin, other_agency):
    return templates.create_template(
        by=other_admin, now=timezone.now(), agency=other_agency, name="Nassau pairing", **CONTENT
    )


def template_form(**overrides):
    data = {
        "name": "All officers paired",
        "title": CONTENT["title"],
        "instruction": CONTENT["instruction"],
        "body": CONTENT["body"],
        "kind": "order",
        "priority": "1",
        "duration_hours": "",
        "until_further_notice": "on",
        "review_hours": "48",
        "to_sworn": "on",
        "suggested_units": [],
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def versions(template):
    return list(template.versions.order_by("number").values_list("number", "title"))


# Versioning


def test_a_new_template_is_version_1_and_audited(pairing_template, admin):
    assert versions(pairing_template) == [(1, CONTENT["title"])]
    version = pairing_template.versions.get()
    assert {u.name for u in version.suggested_units.all()} == {"Manhattan South", "17th Precinct"}
    event = AuditEvent.objects.get(action="template.create")
    assert event.actor == admin and event.object_id == str(pairing_template.pk)


def test_an_edit_makes_version_2_and_an_unchanged_save_makes_none(
    client, admin, pairing_template, manhattan, precinct17
):
    client.force_login(admin)
    url = reverse("bulletins:template_edit", args=[pairing_template.pk])
    units = [manhattan.pk, precinct17.pk]

    unchanged = client.post(url, template_form(suggested_units=units))
    changed = client.post(
        url, template_form(suggested_units=units, title="All officers paired - two per car")
    )
    again = client.post(
        url, template_form(suggested_units=units, title="All officers paired - two per car")
    )

    assert unchanged.status_code == changed.status_code == again.status_code == FOUND
    assert versions(pairing_template) == [
        (1, CONTENT["title"]),
        (2, "All officers paired - two per car"),
    ]
    assert AuditEvent.objects.filter(action="template.change").count() == 1


def test_changing_only_the_suggested_units_is_a_new_version(admin, pairing_template, manhattan):
    version = templates.change_template(
        pairing_template,
        by=admin,
        now=timezone.now(),
        name=pairing_template.name,
        suggested_units=[manhattan],
        **CONTENT,
    )
    assert version.number == 2
    assert list(version.suggested_units.all()) == [manhattan]


def test_a_bulletin_started_from_v1_keeps_v1_after_v2(
    client, admin, sergeant, precinct17, pairing_template
):
    v1 = pairing_template.versions.get()
    client.force_login(sergeant)
    client.post(reverse("bulletins:create"), bulletin_form([precinct17], template_version=v1.pk))
    templates.change_template(
        pairing_template,
        by=admin,
        now=timezone.now(),
        name=pairing_template.name,
        **{**CONTENT, "title": "Changed"},
    )

    bulletin = Bulletin.objects.get()
    assert bulletin.template_version == v1
    assert pairing_template.versions.count() == 2
    assert TemplateVersion.objects.get(pk=v1.pk).title == CONTENT["title"]


# Starting a bulletin from a template


def test_the_new_bulletin_page_offers_the_active_templates_as_links(
    client, sergeant, pairing_template, admin, agency
):
    archived = templates.create_template(
        by=admin, now=timezone.now(), agency=agency, name="Old vehicle check", **CONTENT
    )
    templates.set_archived(archived, by=admin, now=timezone.now(), archived=True)
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:create")).text

    assert "Start from a template" in page
    assert f'href="?template={pairing_template.pk}"' in page
    assert "Old vehicle check" not in page
    assert client.get(reverse("bulletins:create"), {"template": archived.pk}).status_code == 404


def test_starting_from_a_template_prefills_the_form(client, sergeant, pairing_template, precinct17):
    client.force_login(sergeant)

    response = client.get(reverse("bulletins:create"), {"template": pairing_template.pk})

    form = response.context["form"]
    version = pairing_template.versions.get()
    assert form["title"].value() == CONTENT["title"]
    assert form["instruction"].value() == CONTENT["instruction"]
    assert form["kind"].value() == "order" and form["priority"].value() == 1
    assert form["until_further_notice"].value() is True
    assert form["review_hours"].value() == 48
    assert form["to_auxiliary"].value() is False
    # Manhattan South is above the sergeant's command: only his precinct is ticked.
    assert form["units"].value() == [precinct17.pk]
    assert form["template_version"].value() == version.pk
    assert "Started from template All officers paired, version 1" in response.text


def test_a_template_with_a_duration_ends_that_long_from_now(client, sergeant, admin, agency):
    template = templates.create_template(
        by=admin,
        now=timezone.now(),
        agency=agency,
        name="Vehicle check",
        **{**CONTENT, "duration": timedelta(hours=36)},
    )
    client.force_login(sergeant)
    before = timezone.now()

    form = client.get(reverse("bulletins:create"), {"template": template.pk}).context["form"]

    ends = form.initial["expires_at"]
    assert before + timedelta(hours=36) <= ends <= timezone.now() + timedelta(hours=36)
    assert not form.initial["until_further_notice"]


def test_saving_the_draft_records_the_template_version(
    client, sergeant, precinct17, pairing_template
):
    version = pairing_template.versions.get()
    client.force_login(sergeant)

    response = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], template_version=version.pk)
    )

    assert response.status_code == FOUND
    bulletin = Bulletin.objects.get()
    assert bulletin.template_version == version
    edit = client.get(reverse("bulletins:edit", args=[bulletin.pk]))
    assert edit.context["form"]["template_version"].value() == version.pk


def test_the_bulletin_page_names_the_template_for_its_managers(
    client, sergeant, officer, precinct17, pairing_template
):
    version = pairing_template.versions.get()
    draft = authoring.save_draft(
        by=sergeant,
        targets=[(precinct17, True)],
        now=timezone.now(),
        template_version=version,
        **{k: v for k, v in CONTENT.items() if k != "duration"},
    )
    authoring.publish_bulletin(draft, by=sergeant, now=timezone.now())
    url = reverse("bulletins:detail", args=[draft.pk])

    client.force_login(sergeant)
    assert "Started from template All officers paired, version 1." in client.get(url).text
    client.force_login(officer)
    assert "Started from template" not in client.get(url).text


def test_another_agencys_template_is_refused(client, sergeant, precinct17, nassau_template):
    version = nassau_template.versions.get()
    client.force_login(sergeant)

    page = client.get(reverse("bulletins:create"), {"template": nassau_template.pk})
    response = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], template_version=version.pk)
    )

    assert page.status_code == NOT_FOUND
    assert response.status_code == INVALID
    assert "That template is not one of your agency&#x27;s." in response.text
    assert not Bulletin.objects.exists()


def test_the_service_refuses_another_agencys_template_version(
    sergeant, precinct17, nassau_template
):
    with pytest.raises(ValidationError) as error:
        authoring.save_draft(
            by=sergeant,
            targets=[(precinct17, True)],
            now=timezone.now(),
            template_version=nassau_template.versions.get(),
            **{k: v for k, v in CONTENT.items() if k != "duration"},
        )
    assert "template_version" in error.value.error_dict
    assert not Bulletin.objects.exists()


def test_an_archived_template_cannot_be_chosen_but_a_draft_keeps_it(
    client, admin, sergeant, precinct17, pairing_template
):
    version = pairing_template.versions.get()
    client.force_login(sergeant)
    client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], template_version=version.pk)
    )
    draft = Bulletin.objects.get()
    templates.set_archived(pairing_template, by=admin, now=timezone.now(), archived=True)

    new = client.post(
        reverse("bulletins:create"), bulletin_form([precinct17], template_version=version.pk)
    )
    kept = client.post(
        reverse("bulletins:edit", args=[draft.pk]),
        bulletin_form([precinct17], template_version=version.pk, title="Edited"),
    )

    assert new.status_code == INVALID
    assert kept.status_code == FOUND
    draft.refresh_from_db()
    assert draft.title == "Edited" and draft.template_version == version
    assert Bulletin.objects.count() == 1


# The Templates pages


def test_the_admin_lists_creates_archives_and_restores(client, admin, pairing_template):
    client.force_login(admin)

    listing = client.get(reverse("bulletins:templates"))
    created = client.post(
        reverse("bulletins:template_create"),
        template_form(name="Vehicle check", until_further_notice="", duration_hours="72"),
    )
    archive = client.post(
        reverse("bulletins:template_archive", args=[pairing_template.pk]), {"archived": "yes"}
    )
    pairing_template.refresh_from_db()
    archived = pairing_template.is_archived
    client.post(
        reverse("bulletins:template_archive", args=[pairing_template.pk]), {"archived": "no"}
    )
    pairing_template.refresh_from_db()

    assert listing.status_code == OK and "All officers paired" in listing.text
    assert 'href="/bulletins/templates/"' in listing.text  # the navigation links it
    assert created.status_code == archive.status_code == FOUND
    vehicle = BulletinTemplate.objects.get(name="Vehicle check")
    assert vehicle.versions.get().duration == timedelta(hours=72)
    assert archived and not pairing_template.is_archived
    assert list(
        AuditEvent.objects.filter(action="template.archive")
        .order_by("pk")
        .values_list("detail", flat=True)
    ) == [{"archived": True}, {"archived": False}]


def test_the_navigation_shows_templates_to_admins_only(client, admin, sergeant):
    client.force_login(sergeant)
    assert ">Templates</a>" not in client.get(reverse("bulletins:feed")).text
    client.force_login(admin)
    assert ">Templates</a>" in client.get(reverse("bulletins:feed")).text


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": ""}, "title"),
        ({"name": ""}, "name"),
        ({"name": "All officers paired"}, "name"),  # the name is taken
        ({"until_further_notice": "", "duration_hours": ""}, "duration_hours"),
        ({"duration_hours": "12"}, "duration_hours"),  # both
        ({"duration_hours": "-3", "until_further_notice": ""}, "duration_hours"),
        ({"to_sworn": None}, "to_sworn"),
        ({"kind": "gossip"}, "kind"),
        ({"title": "Bell\x07"}, "title"),
    ],
)
def test_bad_input_is_a_field_error_and_nothing_is_saved(
    client, admin, pairing_template, data, field
):
    client.force_login(admin)
    before = TemplateVersion.objects.count()

    response = client.post(reverse("bulletins:template_create"), template_form(**data))

    assert response.status_code == INVALID
    assert field in response.context["form"].errors
    assert TemplateVersion.objects.count() == before
    assert BulletinTemplate.objects.count() == 1


def test_a_suggested_unit_of_another_agency_is_refused(
    admin, agency, other_agency, pairing_template
):
    with pytest.raises(ValidationError):
        templates.create_template(
            by=admin,
            now=timezone.now(),
            agency=agency,
            name="Cross-agency",
            suggested_units=[other_agency],
            **CONTENT,
        )
    with pytest.raises(PermissionDenied):
        templates.change_template(
            pairing_template, by=UserFactory(unit=agency), now=timezone.now(),
            name="x", **CONTENT,
        )  # fmt: skip
    assert BulletinTemplate.objects.count() == 1


# Who may keep templates: agency admins; supervisors only use them


ACTIONS = [
    ("list", "get", "bulletins:templates", False),
    ("create", "get", "bulletins:template_create", False),
    ("create_post", "post", "bulletins:template_create", False),
    ("edit", "get", "bulletins:template_edit", True),
    ("edit_post", "post", "bulletins:template_edit", True),
    ("archive_post", "post", "bulletins:template_archive", True),
]
# persona: expected per action above
MATRIX = {
    "officer": (FORBIDDEN,) * 6,
    "sergeant": (FORBIDDEN,) * 6,
    "admin": (OK, OK, FOUND, OK, FOUND, FOUND),
    "other_admin": (OK, OK, FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
}


@pytest.mark.parametrize("persona", list(MATRIX))
@pytest.mark.parametrize("index", range(len(ACTIONS)))
def test_permission_matrix(client, request, persona, index, pairing_template):
    person = request.getfixturevalue(persona)
    name, method, route, takes_pk = ACTIONS[index]
    url = reverse(route, args=[pairing_template.pk] if takes_pk else [])
    data = template_form(name=f"Made by {persona}", title="Changed by someone")
    data = {"archived": "yes"} if name == "archive_post" else data
    client.force_login(person)

    response = client.get(url) if method == "get" else client.post(url, data)

    assert response.status_code == MATRIX[persona][index]
    pairing_template.refresh_from_db()
    if persona != "admin":
        assert pairing_template.versions.count() == 1 and not pairing_template.is_archived
    if persona in ("officer", "sergeant"):
        assert not BulletinTemplate.objects.filter(name__startswith="Made by").exists()


def test_the_list_shows_only_the_admins_own_agency(client, other_admin, pairing_template):
    client.force_login(other_admin)
    page = client.get(reverse("bulletins:templates")).text
    assert "All officers paired" not in page


def test_seed_demo_creates_the_five_story_templates_once():
    from django.core.management import call_command

    call_command("seed_demo", stdout=None)
    call_command("seed_demo", stdout=None)

    names = set(BulletinTemplate.objects.values_list("name", flat=True))
    assert names == {
        "All officers paired",
        "Auxiliaries off patrol",
        "Station-house security",
        "Vehicle check",
        "Social-media threat",
    }
    assert TemplateVersion.objects.count() == 5
    pairing = TemplateVersion.objects.get(template__name="All officers paired")
    assert pairing.title == "All officers paired - no solo posts" and pairing.duration is None
    threat = TemplateVersion.objects.get(template__name="Social-media threat")
    assert (threat.kind, threat.priority) == ("intelligence", 2)


def test_two_admins_saving_the_same_name_at_once_get_a_field_error_not_a_500(
    admin, agency, pairing_template, monkeypatch
):
    # The check before saving passed for both; the unique constraint decides the race.
    monkeypatch.setattr(templates, "_check_name", lambda *args, **kwargs: None)

    with pytest.raises(ValidationError) as refused:
        templates.create_template(
            by=admin, now=timezone.now(), agency=agency, name="All officers paired", **CONTENT
        )

    assert refused.value.message_dict == {"name": [templates.NAME_TAKEN]}
    assert BulletinTemplate.objects.filter(name="All officers paired").count() == 1

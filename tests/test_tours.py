"""Tours of duty (issue 23): which tours a unit has, when one runs, who is on duty; the tours
page; the off-duty chase as a service (the worker: test_off_duty_worker.py)."""

from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Reminder
from bulletins.services import chasing
from portal import tours
from portal.models import AuditEvent, Tour
from tests.factories import UserFactory, make_unit, published_bulletin

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)


def local(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def add_tours(unit, *spec):
    for position, (name, start, end) in enumerate(spec):
        Tour.objects.create(unit=unit, name=name, starts_at=time(*start), ends_at=time(*end),
                            position=position)  # fmt: skip
    tours.tours_changed(unit)


DEFAULT = (("Day", (7,), (15,)), ("Evening", (15,), (23,)), ("Midnight", (23,), (7,)))


@pytest.fixture
def default_tours(agency):
    add_tours(agency, *DEFAULT)


def names(found):
    return [tour.name for tour in found]


def test_a_unit_without_tours_uses_the_nearest_unit_up_with_some(
    agency, manhattan, precinct17, squad17, precinct75, default_tours
):
    add_tours(precinct17, ("Early", (6,), (14,)), ("Late", (14,), (22,)))

    assert names(tours.tours_for(agency)) == ["Day", "Evening", "Midnight"]
    assert names(tours.tours_for(manhattan)) == ["Day", "Evening", "Midnight"]
    assert names(tours.tours_for(precinct17)) == ["Early", "Late"]
    assert names(tours.tours_for(squad17)) == ["Early", "Late"]
    assert names(tours.tours_for(precinct75)) == ["Day", "Evening", "Midnight"]


def test_tours_are_kept_per_agency_and_forgotten_when_they_change(
    agency, precinct17, default_tours, django_assert_num_queries
):
    tours.tours_for(precinct17, agency_id=agency.pk)
    with django_assert_num_queries(0):
        assert names(tours.tours_for(precinct17, agency_id=agency.pk)) == [
            "Day",
            "Evening",
            "Midnight",
        ]

    add_tours(precinct17, ("Early", (6,), (14,)))

    assert names(tours.tours_for(precinct17)) == ["Early"]


def test_an_agency_without_tours_has_none(agency, precinct17):
    other = make_unit("Other Agency")
    add_tours(other, *DEFAULT)

    assert tours.tours_for(precinct17) == []
    assert tours.nearest_tour_start(precinct17, timezone.now()) is None


def test_person_tour_is_the_named_tour_of_their_unit(precinct17, default_tours):
    day = UserFactory(unit=precinct17, tour="Day")
    unknown = UserFactory(unit=precinct17, tour="Swing")
    none = UserFactory(unit=precinct17, tour="")

    assert tours.person_tour(day).name == "Day"
    assert tours.person_tour(unknown) is None
    assert tours.person_tour(none) is None


def test_windows_in_agency_time_and_past_midnight(precinct17, default_tours):
    day, _evening, midnight = tours.tours_for(precinct17)

    assert tours.tour_window(day, date(2026, 12, 4)) == (
        datetime(2026, 12, 4, 12, tzinfo=UTC), datetime(2026, 12, 4, 20, tzinfo=UTC)
    )  # fmt: skip
    assert tours.tour_window(midnight, date(2026, 12, 4)) == (
        datetime(2026, 12, 5, 4, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC)
    )  # fmt: skip


def test_a_midnight_tour_across_the_dst_changes_is_seven_or_nine_hours(precinct17, default_tours):
    midnight = tours.tours_for(precinct17)[2]

    spring_start, spring_end = tours.tour_window(midnight, date(2026, 3, 7))
    fall_start, fall_end = tours.tour_window(midnight, date(2026, 10, 31))

    assert spring_end - spring_start == timedelta(hours=7)
    assert spring_end == local(2026, 3, 8, 7)
    assert fall_end - fall_start == timedelta(hours=9)
    assert fall_end == local(2026, 11, 1, 7)


def test_nearest_tour_start_past_or_future(precinct17, default_tours):
    assert tours.nearest_tour_start(precinct17, local(2026, 12, 4, 7, 20)) == (
        tours.tours_for(precinct17)[0], local(2026, 12, 4, 7)
    )  # fmt: skip
    tour, start = tours.nearest_tour_start(precinct17, local(2026, 12, 4, 14, 40))
    assert (tour.name, start) == ("Evening", local(2026, 12, 4, 15))
    tour, start = tours.nearest_tour_start(precinct17, local(2026, 12, 5, 0, 30))
    assert (tour.name, start) == ("Midnight", local(2026, 12, 4, 23))


def test_on_duty_and_next_tour_start(precinct17, default_tours):
    day = UserFactory(unit=precinct17, tour="Day")
    midnight = UserFactory(unit=precinct17, tour="Midnight")
    no_tour = UserFactory(unit=precinct17)

    assert tours.on_duty(day, local(2026, 12, 4, 7))
    assert not tours.on_duty(day, local(2026, 12, 4, 15))
    assert not tours.on_duty(day, local(2026, 12, 4, 3))
    assert tours.on_duty(midnight, local(2026, 12, 5, 3))
    assert not tours.on_duty(midnight, local(2026, 12, 5, 12))
    assert tours.on_duty(no_tour, local(2026, 12, 5, 3))
    assert tours.next_tour_start(day, local(2026, 12, 4, 3)) == local(2026, 12, 4, 7)
    assert tours.next_tour_start(day, local(2026, 12, 4, 8)) == local(2026, 12, 5, 7)
    assert tours.next_tour_start(midnight, local(2026, 12, 5, 1)) == local(2026, 12, 5, 23)
    assert tours.next_tour_start(no_tour, local(2026, 12, 4, 3)) is None


def test_tour_roster_is_the_units_own_active_people_of_that_tour(
    precinct17, squad17, default_tours
):
    maria = UserFactory(unit=precinct17, tour="Day", name="Maria")
    UserFactory(unit=precinct17, tour="Evening")
    UserFactory(unit=squad17, tour="Day")
    UserFactory(unit=precinct17, tour="Day", is_active=False)
    day = tours.tours_for(precinct17)[0]

    assert list(tours.tour_roster(precinct17, day)) == [maria]


# The off-duty chase (CHASE_OFF_DUTY false, the default), as a service with the time passed in.


def reminded(person, bulletin):
    return Reminder.objects.filter(
        recipient__user=person, recipient__bulletin=bulletin, step=0
    ).exists()


def test_an_officer_told_off_duty_is_reminded_after_their_tour_starts(
    admin, precinct17, default_tours
):
    day = UserFactory(unit=precinct17, tour="Day", email="day@agency.test")
    midnight = UserFactory(unit=precinct17, tour="Midnight", email="mid@agency.test")
    no_tour = UserFactory(unit=precinct17, email="none@agency.test")
    t0 = local(2026, 12, 4, 3)  # Day is off duty, Midnight on duty
    order = published_bulletin(admin, precinct17, now=t0, priority=1)

    chasing.chase(t0 + 20 * MINUTE)
    at_20 = [reminded(p, order) for p in (day, midnight, no_tour)]
    chasing.chase(local(2026, 12, 4, 7, 14))
    before_tour_delay = reminded(day, order)
    chasing.chase(local(2026, 12, 4, 7, 15))

    assert at_20 == [False, True, True]
    assert not before_tour_delay
    assert reminded(day, order)


def test_escalation_follows_the_delayed_reminder(admin, precinct17, sergeant, default_tours):
    day = UserFactory(unit=precinct17, tour="Day")
    t0 = local(2026, 12, 4, 3)
    published_bulletin(admin, precinct17, now=t0, priority=1)

    for moment in (t0 + 20 * MINUTE, t0 + 40 * MINUTE, local(2026, 12, 4, 7, 16)):
        chasing.chase(moment)
    steps_before = list(Reminder.objects.filter(recipient__user=day).values_list("step", flat=True))
    chasing.chase(local(2026, 12, 4, 7, 31))

    assert steps_before == [0]
    assert sorted(Reminder.objects.filter(recipient__user=day).values_list("step", flat=True)) == [
        0, 1
    ]  # fmt: skip


def test_a_unit_with_its_own_tours_is_timed_by_them(admin, precinct17, squad17, default_tours):
    add_tours(squad17, ("Day", (9,), (17,)))
    agency_day = UserFactory(unit=precinct17, tour="Day")
    squad_day = UserFactory(unit=squad17, tour="Day")
    order = published_bulletin(admin, precinct17, now=local(2026, 12, 4, 3), priority=1)

    chasing.chase(local(2026, 12, 4, 7, 20))

    assert reminded(agency_day, order)
    assert not reminded(squad_day, order)


def test_with_chase_off_duty_everyone_is_chased_at_once(settings, admin, precinct17, default_tours):
    settings.CHASE_OFF_DUTY = True
    day = UserFactory(unit=precinct17, tour="Day")
    t0 = local(2026, 12, 4, 3)
    order = published_bulletin(admin, precinct17, now=t0, priority=1)

    chasing.chase(t0 + 16 * MINUTE)

    assert reminded(day, order)


# The tours page.


def tours_post(**rows):
    data = {"tours-TOTAL_FORMS": str(len(rows)), "tours-INITIAL_FORMS": "0"}
    for index, (name, start, end) in enumerate(rows.values()):
        data |= {f"tours-{index}-name": name, f"tours-{index}-starts_at": start,
                 f"tours-{index}-ends_at": end}  # fmt: skip
    return data


def test_admin_sets_a_units_own_tours_audited(client, admin, precinct17, squad17, default_tours):
    client.force_login(admin)
    url = reverse("unit_tours", args=[precinct17.pk])

    page = client.get(url).content.decode()
    response = client.post(
        url, tours_post(a=("Early", "06:00", "14:00"), b=("Late", "14:00", "22:00"))
    )

    assert "uses the tours of" in page and "Metro Police Department" in page
    assert response.status_code == HTTPStatus.FOUND
    assert names(tours.tours_for(squad17)) == ["Early", "Late"]
    event = AuditEvent.objects.get(action="unit.tours")
    assert event.detail["after"] == ["Early 06:00-14:00", "Late 14:00-22:00"]
    assert event.object_id == str(precinct17.pk)


@pytest.mark.parametrize(
    ("rows", "field", "message"),
    [
        ({"a": ("Day", "7am", "15:00")}, "starts_at", "Enter a time as HH:MM"),
        ({"a": ("Day", "07:00", "25:00")}, "ends_at", "Enter a time as HH:MM"),
        ({"a": ("", "07:00", "15:00")}, "name", "Give a name for this tour."),
        ({"a": ("Day", "07:00", "")}, "ends_at", "Give an end for this tour."),
        ({"a": ("Day", "07:00", "07:00")}, "ends_at", "end at another time"),
        ({"a": ("Day", "07:00", "15:00"), "b": ("day", "15:00", "23:00")}, "name",
         "Another tour of this unit has this name already."),
    ],
)  # fmt: skip
def test_bad_tours_are_refused_with_a_clear_message_and_nothing_changes(
    client, admin, precinct17, rows, field, message
):
    client.force_login(admin)

    response = client.post(reverse("unit_tours", args=[precinct17.pk]), tours_post(**rows))

    assert response.status_code == HTTPStatus.OK
    errors = [str(e) for form in response.context["formset"] for e in form.errors.get(field, [])]
    assert any(message in error for error in errors), errors
    assert "Nothing was saved" in response.content.decode()
    assert not Tour.objects.exists()
    assert not AuditEvent.objects.filter(action="unit.tours").exists()


def test_renaming_and_removing_tours_keeps_their_rows(client, admin, agency, default_tours):
    client.force_login(admin)
    day, evening, midnight = Tour.objects.filter(unit=agency).order_by("position")
    data = {"tours-TOTAL_FORMS": "3", "tours-INITIAL_FORMS": "3"}
    for index, (tour, name) in enumerate(((day, "Evening"), (evening, "Day"), (midnight, ""))):
        data |= {f"tours-{index}-id": tour.pk, f"tours-{index}-name": name,
                 f"tours-{index}-starts_at": f"{tour.starts_at:%H:%M}",
                 f"tours-{index}-ends_at": f"{tour.ends_at:%H:%M}"}  # fmt: skip
    data["tours-2-remove"] = "on"

    client.post(reverse("unit_tours", args=[agency.pk]), data)

    assert Tour.objects.get(pk=day.pk).name == "Evening"
    assert Tour.objects.get(pk=evening.pk).name == "Day"
    assert not Tour.objects.filter(pk=midnight.pk).exists()


def test_a_unit_of_another_agency_is_not_found(client, admin):
    other = make_unit("Other Agency")
    client.force_login(admin)

    response = client.get(reverse("unit_tours", args=[other.pk]))

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_the_units_page_links_to_tours_for_admins_only(client, admin, sergeant, precinct17):
    client.force_login(admin)
    admin_page = client.get(reverse("people_units")).content.decode()

    assert reverse("unit_tours", args=[precinct17.pk]) in admin_page


def test_seed_demo_gives_the_demo_agency_and_people_tours():
    from django.core.management import call_command

    from portal.models import Unit, User

    call_command("seed_demo", "--officers", "6", stdout=None)
    call_command("seed_demo", "--officers", "6", stdout=None)

    agency = Unit.objects.get(depth=1, name="Metro Police Department")
    assert [str(t) for t in Tour.objects.filter(unit=agency)] == [
        "Day 07:00-15:00", "Evening 15:00-23:00", "Midnight 23:00-07:00"
    ]  # fmt: skip
    assert User.objects.get(email="officer@demo.test").tour == "Day"
    assert User.objects.get(email="sergeant@demo.test").tour == "Day"
    assert not User.objects.filter(email__endswith="@demo.test", tour="").exists()
    generated = User.objects.filter(email__startswith="officer0")
    assert set(generated.values_list("tour", flat=True)) == {"Day", "Evening", "Midnight"}


# The roster's optional tour column and the person's record.

ROSTER_HEADER = "email,name,badge,rank,member_class,unit_path,role,tour"


def roster_line(email, badge, unit_path, tour):
    return f"{email},Pat Person,{badge},Police Officer,sworn,{unit_path},officer,{tour}"


def test_roster_tour_column_sets_checks_and_keeps_tours(admin, precinct17, default_tours):
    from portal import roster
    from portal.models import User
    from portal.roster_rows import RosterError

    path = "Metro Police Department / Manhattan South / 17th Precinct"
    roster.import_roster(
        [ROSTER_HEADER, roster_line("a@agency.test", "1", path, "Day"),
         roster_line("b@agency.test", "2", path, "")],
        scope=admin.agency, confirmed=True,
    )  # fmt: skip
    with pytest.raises(RosterError) as refused:
        roster.import_roster(
            [ROSTER_HEADER, roster_line("a@agency.test", "1", path, "Swing")],
            scope=admin.agency, confirmed=True,
        )  # fmt: skip
    roster.import_roster(
        ["email,name,badge,rank,member_class,unit_path,role",
         roster_line("a@agency.test", "1", path, "").rsplit(",", 1)[0]],
        scope=admin.agency, confirmed=True,
    )  # fmt: skip

    assert [str(error) for error in refused.value.errors] == [
        "line 2: tour 'Swing' is not a tour of 17th Precinct (its tours are Day, Evening, Midnight)"
    ]
    assert User.objects.get(email="a@agency.test").tour == "Day"  # no column: kept
    assert User.objects.get(email="b@agency.test").tour == ""


def test_the_person_edit_form_offers_the_units_tours(client, admin, officer, default_tours):
    from portal.models import User

    client.force_login(admin)
    url = reverse("person_edit", args=[officer.pk])
    form = client.get(url).context["form"]
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data["wants_email"] = "on"

    refused = client.post(url, {**data, "tour": "Swing"})
    saved = client.post(url, {**data, "tour": "Evening"})

    assert [value for value, _ in form.fields["tour"].choices] == ["", "Day", "Evening", "Midnight"]
    assert "Choose one of the unit" in str(refused.context["form"].errors["tour"])
    assert saved.status_code == HTTPStatus.FOUND
    assert User.objects.get(pk=officer.pk).tour == "Evening"
    assert (
        "Regular tour"
        in client.get(reverse("bulletins:person", args=[officer.pk])).content.decode()
    )


def test_outstanding_list_says_off_duty_until_their_tour_starts(
    client, admin, precinct17, default_tours, django_assert_max_num_queries
):
    now = timezone.now()
    local_now = timezone.localtime(now)
    # A tour starting in two hours that ended an hour ago the day before: off duty now.
    starts = (local_now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    ends = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    add_tours(precinct17, ("Later", (starts.hour, starts.minute), (ends.hour, ends.minute)),
              ("Now", (ends.hour, ends.minute), (starts.hour, starts.minute)))  # fmt: skip
    waiting = UserFactory(unit=precinct17, tour="Later", name="Waiting Officer")
    on_duty = UserFactory(unit=precinct17, tour="Now", name="On Duty Officer")
    for number in range(10):
        UserFactory(unit=precinct17, tour="Later", name=f"Officer {number}")
    order = published_bulletin(admin, precinct17, now=now - timedelta(minutes=5), priority=1)
    client.force_login(admin)
    url = reverse("bulletins:outstanding", args=[order.pk])
    client.get(url)

    with django_assert_max_num_queries(14):
        page = client.get(url).content.decode()

    row = page[page.index(waiting.name) : page.index("</tr>", page.index(waiting.name))]
    other = page[page.index(on_duty.name) : page.index("</tr>", page.index(on_duty.name))]
    assert "off duty until " in row and f"{starts:%H:%M}</span>" in row  # "Sat 01:16" after 22:00
    assert "off duty" not in other


def test_a_material_amendment_made_off_duty_waits_for_the_tour_too(
    admin, precinct17, default_tours
):
    from bulletins.services import authoring

    day = UserFactory(unit=precinct17, tour="Day")
    order = published_bulletin(admin, precinct17, now=local(2026, 12, 4, 9), priority=1)
    authoring.amend_bulletin(order, by=admin, now=local(2026, 12, 5, 2), reason="Auxiliaries too",
                             is_material=True, title="All members paired")  # fmt: skip

    chasing.chase(local(2026, 12, 5, 2, 20))
    early = Reminder.objects.filter(recipient__user=day, version=2).exists()
    chasing.chase(local(2026, 12, 5, 7, 15))

    assert not early
    assert Reminder.objects.filter(recipient__user=day, version=2, step=0).exists()

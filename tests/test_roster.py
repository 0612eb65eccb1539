import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from portal import people, roster, roster_preview
from portal.models import AuditEvent, Unit, User
from portal.units import load_units, unit_key
from tests.factories import UserFactory, make_unit

pytestmark = pytest.mark.django_db

HEADER = "email,name,badge,rank,member_class,unit_path,role"
AGENCY = "Metro Police Department"
P17 = f"{AGENCY} / Manhattan South / 17th Precinct"
P75 = f"{AGENCY} / Brooklyn North / 75th Precinct"


def roster_csv(*rows, header=HEADER):
    return io.StringIO("\n".join([header, *rows]) + "\n", newline="")


def import_rows(*rows, **options):
    return roster.import_roster(roster_csv(*rows), **options)


def unit_at(*names):
    return Unit.objects.get(pk=load_units()[unit_key(names)].pk)


def move_under(unit, parent):
    position = "sorted-child" if Unit.node_order_by else "last-child"
    Unit.objects.move(Unit.objects.get(pk=unit.pk), parent, pos=position)


def errors_of(excinfo):
    return [(error.line, error.reason) for error in excinfo.value.errors]


def test_import_with_create_units_confirmed_creates_people_and_the_unit_tree():
    summary = import_rows(
        f"Maria.Lopez@Agency.test,Maria Lopez,4127,Police Officer,sworn,{P17},officer",
        f"sam@agency.test,Sam Goldberg,A22,Auxiliary Police Officer,auxiliary,{P17},officer",
        f"dan@agency.test,Dan Kowalski,3310,Sergeant,sworn,{P17} / 17th Precinct Anti-Crime,"
        "supervisor",
        f"chief@agency.test,Pat Reyes,0412,Deputy Chief,civilian,{AGENCY},admin",
        create_units=True,
        confirmed=True,
    )

    assert (summary.created, summary.updated, summary.units_created) == (4, 0, 4)
    agency = unit_at(AGENCY)
    squad = unit_at(AGENCY, "Manhattan South", "17th Precinct", "17th Precinct Anti-Crime")
    assert agency.is_root()
    assert [unit.kind for unit in Unit.objects.get_ancestors(squad)] == [
        "agency",
        "borough",
        "precinct",
    ]
    assert squad.kind == Unit.Kind.SQUAD
    maria = User.objects.get(email="maria.lopez@agency.test")
    assert maria.unit.path_names() == [AGENCY, "Manhattan South", "17th Precinct"]
    assert set(User.objects.values_list("agency", flat=True)) == {agency.pk}
    assert not maria.has_usable_password()
    assert User.objects.get(badge="A22").member_class == User.MemberClass.AUXILIARY
    assert User.objects.get(badge="3310").role == User.Role.SUPERVISOR
    chief = User.objects.get(badge="0412")
    assert (chief.role, chief.is_staff, chief.unit) == (User.Role.ADMIN, True, agency)
    assert not maria.is_staff


def test_units_deeper_than_a_precinct_are_squads():
    import_rows(
        f"a@agency.test,A,1,PO,sworn,{P17} / Anti-Crime / Team 1 / Car 4,officer",
        create_units=True,
        confirmed=True,
    )

    assert unit_at(*P17.split(" / "), "Anti-Crime", "Team 1", "Car 4").kind == Unit.Kind.SQUAD


def test_import_reuses_existing_units_whatever_the_case(precinct17, agency):
    summary = import_rows(
        "a@agency.test,A,1,PO,sworn,metro police department / MANHATTAN SOUTH / 17th precinct,"
        "officer"
    )

    assert summary.units_created == 0
    person = User.objects.get(email="a@agency.test")
    assert (person.unit, person.agency) == (precinct17, agency)


def test_reimport_updates_rank_and_moves_the_person(officer, precinct75, agency):
    summary = import_rows(
        f"OFFICER@agency.test,Maria Lopez,{officer.badge},Detective,sworn,{P75},officer"
    )

    officer.refresh_from_db()
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 0)
    assert (officer.rank, officer.unit) == ("Detective", precinct75)
    assert officer.agency == agency
    assert officer.has_usable_password()


def test_reimport_of_the_same_file_changes_nothing(precinct17, precinct75):
    rows = [
        f"a@agency.test,A,1,PO,sworn,{P17},officer",
        f"b@agency.test,B,2,PO,sworn,{P75},admin",
    ]
    import_rows(*rows)

    summary = import_rows(*rows)

    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 2)
    assert summary.units_created == 0


def test_badges_may_swap_within_one_file(precinct17):
    import_rows(
        f"a@agency.test,A,1,PO,sworn,{P17},officer", f"b@agency.test,B,2,PO,sworn,{P17},officer"
    )

    # People are matched by badge (issue 18): a swap gives two people each other's address,
    # which is a change of email to confirm.
    import_rows(
        f"a@agency.test,A,2,PO,sworn,{P17},officer",
        f"b@agency.test,B,1,PO,sworn,{P17},officer",
        confirmed=True,
    )

    assert User.objects.get(email="a@agency.test").badge == "2"
    assert User.objects.get(email="b@agency.test").badge == "1"


def test_the_same_badge_in_another_agency_is_fine(officer):
    make_unit("1st Precinct", parent=make_unit("Nassau County PD"))

    import_rows(f"x@other.test,X,{officer.badge},PO,sworn,Nassau County PD / 1st Precinct,officer")

    assert User.objects.filter(badge=officer.badge).count() == 2


def test_a_bad_file_changes_nothing_and_reports_every_bad_row(officer, outsider):
    users, units = User.objects.count(), Unit.objects.count()

    with pytest.raises(roster.RosterError) as excinfo:
        import_rows(
            f"good@agency.test,Good Row,9001,PO,sworn,{P17} / New Squad,officer",  # 2
            f"not-an-email,No Email,9002,PO,sworn,{P17},officer",  # 3
            f"blank@agency.test,,9003,PO,sworn,{P17},officer",  # 4
            f"class@agency.test,Bad Class,9004,PO,deputy,{P17},officer",  # 5
            f"role@agency.test,Bad Role,9005,PO,sworn,{P17},chief",  # 6
            "path@agency.test,No Unit,9006,PO,sworn,,officer",  # 7
            f"GOOD@agency.test,Twice,9007,PO,sworn,{P17},officer",  # 8
            f"dupe@agency.test,Dupe Badge,9001,PO,sworn,{P75},officer",  # 9
            f"outsider@agency.test,Clash,9010,PO,sworn,{P17},officer",  # 10
            f"short@agency.test,Short Row,9010,PO,sworn,{P17}",  # 11
        )

    assert errors_of(excinfo) == [
        (2, "no unit 'New Squad' under '17th Precinct'"),
        (3, "email 'not-an-email' is not a valid address"),
        (4, "name is empty"),
        (5, "member class 'deputy' is not one of sworn, auxiliary, civilian"),
        (6, "role 'chief' is not one of officer, supervisor, admin, auditor"),
        (7, "unit path is empty"),
        (8, "email good@agency.test is already on line 2"),
        (9, "badge 9001 is already on line 2 in this agency"),
        (
            10,
            f"email outsider@agency.test belongs to Pat Outsider (badge {outsider.badge}); "
            "people are matched by badge, so correct the row or that person's record first",
        ),
        (11, "expected 7 fields, found 6"),
        (11, "role is empty"),
    ]
    assert (User.objects.count(), Unit.objects.count()) == (users, units)
    assert not AuditEvent.objects.filter(action="roster.import").exists()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "the file is empty: a header row is required"),
        ("email,name,badge,rank,unit_path,role", "header: missing column(s): member_class"),
        (f"{HEADER},shoe_size", "header: unknown column(s): shoe_size"),
    ],
)
def test_a_bad_header_is_refused(header, reason):
    with pytest.raises(roster.RosterError) as excinfo:
        roster.import_roster(io.StringIO(header + "\n" if header else ""))

    assert errors_of(excinfo) == [(1, reason)]


def test_columns_may_come_in_any_order(precinct17):
    roster.import_roster(
        io.StringIO(
            f"role,unit_path,member_class,rank,badge,name,email\nofficer,{P17},sworn,PO,7,A,a@x.test\n"
        )
    )

    assert User.objects.get(email="a@x.test").badge == "7"


def test_an_agency_scoped_import_refuses_other_agencies(agency, precinct17, outsider):
    other = make_unit("Nassau County PD")
    stranger = UserFactory(email="stranger@nassau.test", unit=other)

    with pytest.raises(roster.RosterError) as excinfo:
        import_rows(
            "a@nassau.test,A,1,PO,sworn,Nassau County PD,officer",
            f"{stranger.email},Stranger,{stranger.badge},PO,sworn,{P17},officer",
            scope=agency,
        )

    assert errors_of(excinfo) == [
        (2, f"unit path must start with {AGENCY!r}"),
        (3, "stranger@nassau.test belongs to another agency"),
    ]


def test_the_import_writes_one_audit_event(admin, precinct17):
    import_rows(f"a@agency.test,A,1,PO,sworn,{P17},officer", by=admin, source="june.csv")

    event = AuditEvent.objects.get(action="roster.import")
    assert event.actor == admin
    assert event.detail["source"] == "june.csv"
    assert (event.detail["created"], event.detail["rows"]) == (1, 1)


def test_invites_are_sent_after_commit_only_when_asked(
    precinct17, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        import_rows(f"quiet@agency.test,Quiet,1,PO,sworn,{P17},officer")
        import_rows(f"new@agency.test,New,2,PO,sworn,{P17},officer", send_invites=True)

    assert [message.to for message in mailoutbox] == [["new@agency.test"]]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


def test_moving_a_person_keeps_the_agency_in_step(officer, admin):
    nassau = make_unit("Nassau County PD")
    precinct = make_unit("1st Precinct", parent=nassau)
    officer.unit = precinct

    people.save_person(officer, by=admin, changed=["unit"])

    officer.refresh_from_db()
    assert (officer.unit, officer.agency) == (precinct, nassau)
    event = AuditEvent.objects.get(action="person.change")
    assert (event.actor, event.object_id) == (admin, str(officer.pk))
    assert event.detail["unit"] == precinct.pk


def test_moving_a_person_refuses_a_badge_taken_in_the_new_agency(officer, admin):
    nassau = make_unit("Nassau County PD")
    UserFactory(unit=nassau, badge=officer.badge)
    officer.unit = nassau

    with pytest.raises(ValidationError, match="already belongs"):
        people.save_person(officer, by=admin, changed=["unit"])

    officer.refresh_from_db()
    assert officer.agency.name == AGENCY


def test_the_command_prints_the_summary(tmp_path, capsys):
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text(f"\ufeff{HEADER}\na@agency.test,A,1,PO,sworn,{P17},officer\n")

    call_command("import_roster", str(csv_file), "--create-units", "--confirm")

    assert "1 people created, 0 updated, 0 unchanged; 3 units created" in capsys.readouterr().out


def test_the_command_fails_with_every_error_and_changes_nothing(tmp_path, capsys, precinct17):
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text(
        f"{HEADER}\na@agency.test,A,1,PO,sworn,{P17},officer\nbad,B,2,PO,sworn,{P17},boss\n"
    )

    with pytest.raises(CommandError, match="2 problem"):
        call_command("import_roster", str(csv_file))

    assert capsys.readouterr().err.splitlines() == [
        "line 3: email 'bad' is not a valid address",
        "line 3: role 'boss' is not one of officer, supervisor, admin, auditor",
    ]
    assert not User.objects.exists()


def test_a_2000_row_import_is_set_based(django_assert_max_num_queries, precinct17):
    rows = [
        f"member{n}@agency.test,Member {n},{50000 + n},PO,sworn,{P17} / Squad {n % 8},officer"
        for n in range(2000)
    ]
    import_rows(*rows[:4], create_units=True, confirmed=True)

    with django_assert_max_num_queries(40):
        summary = import_rows(
            *[row.replace(",PO,", ",Detective,") for row in rows], create_units=True, confirmed=True
        )

    assert (summary.created, summary.updated, summary.units_created) == (1996, 4, 4)
    assert User.objects.filter(rank="Detective").count() == 2000


def test_moving_a_unit_to_another_agency_brings_its_members_along(officer, precinct17):
    nassau = make_unit("Nassau County PD")
    move_under(precinct17, nassau)

    moved = people.resync_agencies(precinct17)

    officer.refresh_from_db()
    assert moved == 1
    assert officer.agency == nassau


def test_a_unit_move_that_would_share_a_badge_is_refused(officer, precinct17):
    nassau = make_unit("Nassau County PD")
    UserFactory(unit=nassau, badge=officer.badge)
    move_under(precinct17, nassau)

    with pytest.raises(ValidationError, match="would share a badge"):
        people.resync_agencies(precinct17)


# Issue 19, point 2: a typo in a unit path is refused, never a new unit


def snapshot():
    return (User.objects.count(), Unit.objects.count(), AuditEvent.objects.count())


TYPO = f"{AGENCY} / Manhatan South / 17th Precinct"


def test_a_typo_in_a_unit_path_is_refused_with_the_nearest_name_and_nothing_written(
    officer, precinct75
):
    before = snapshot()

    with pytest.raises(roster.RosterError) as excinfo:
        import_rows(
            f"a@agency.test,A,1,PO,sworn,{P75},officer",
            f"b@agency.test,B,2,PO,sworn,{TYPO},officer",
            f"{officer.email},Maria Lopez,{officer.badge},Detective,sworn,{TYPO},officer",
        )

    reason = (
        "no unit 'Manhatan South' under 'Metro Police Department'; did you mean 'Manhattan South'?"
    )
    assert errors_of(excinfo) == [(3, reason), (4, reason)]
    assert snapshot() == before
    officer.refresh_from_db()
    assert (officer.rank, officer.unit.name) != ("Detective", "")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (f"{AGENCY} / Staten Island", f"no unit 'Staten Island' under {AGENCY!r}"),
        (
            f"{AGENCY} / manhattan south / 17th precint",
            "no unit '17th precint' under 'Manhattan South'; did you mean '17th Precinct'?",
        ),
        (
            f"{P17} / 17th Pct Anti-Crime",
            "no unit '17th Pct Anti-Crime' under '17th Precinct'; "
            "did you mean '17th Precinct Anti-Crime'?",
        ),
        (
            "Metro Polise Department / Manhattan South",
            "no agency 'Metro Polise Department'; did you mean 'Metro Police Department'?",
        ),
        ("Nassau County PD", "no agency 'Nassau County PD'"),
    ],
)
def test_an_unknown_unit_is_named_with_a_suggestion_only_when_one_is_close(
    squad17, precinct75, path, reason
):
    with pytest.raises(roster.RosterError) as excinfo:
        import_rows(f"a@agency.test,A,1,PO,sworn,{path},officer")

    assert errors_of(excinfo) == [(2, reason)]


def test_create_units_lists_the_units_to_create_and_writes_nothing_until_confirmed(precinct17):
    before = snapshot()

    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        import_rows(
            f"a@agency.test,A,1,PO,sworn,{P17},officer",
            f"b@agency.test,B,2,PO,sworn,{TYPO} / Anti-Crime,officer",
            f"c@agency.test,C,3,PO,sworn,{TYPO},officer",
            create_units=True,
        )

    assert [str(unit) for unit in excinfo.value.new_units] == [
        f"line 3: new unit {AGENCY} / Manhatan South",
        f"line 3: new unit {TYPO}",
        f"line 3: new unit {TYPO} / Anti-Crime",
    ]
    assert excinfo.value.changes == []
    assert str(excinfo.value) == "3 new unit(s) need confirming; nothing was changed"
    assert snapshot() == before


def test_confirmed_new_units_are_created_and_audited(admin, precinct17):
    rows = (f"b@agency.test,B,2,PO,sworn,{TYPO},officer",)
    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        import_rows(*rows, create_units=True)
    keys = [unit.key for unit in excinfo.value.new_units]

    summary = import_rows(*rows, create_units=True, confirmed=keys, by=admin)

    assert summary.units_created == 2
    assert summary.new_units == [f"{AGENCY} / Manhatan South", TYPO]
    assert User.objects.get(email="b@agency.test").unit.path_names() == TYPO.split(" / ")
    event = AuditEvent.objects.get(action="roster.import")
    assert event.detail["new_units"] == summary.new_units
    assert event.detail["units_created"] == 2


def test_a_unit_left_out_of_the_confirmation_is_asked_again(precinct17):
    rows = (f"b@agency.test,B,2,PO,sworn,{TYPO},officer",)
    with pytest.raises(roster.ConfirmationNeeded) as excinfo:
        import_rows(*rows, create_units=True)
    first = excinfo.value.new_units[0]

    with pytest.raises(roster.ConfirmationNeeded) as again:
        import_rows(*rows, create_units=True, confirmed=[list(first.key)])

    assert [unit.name for unit in again.value.new_units] == [TYPO]
    assert not Unit.objects.filter(name="Manhatan South").exists()


def test_create_units_never_reaches_outside_the_scope(agency, precinct17):
    with pytest.raises(roster.RosterError) as excinfo:
        import_rows(
            "a@nassau.test,A,1,PO,sworn,Nassau County PD / 1st Precinct,officer",
            scope=agency,
            create_units=True,
            confirmed=True,
        )

    assert errors_of(excinfo) == [(2, f"unit path must start with {AGENCY!r}")]
    assert not Unit.objects.filter(name="Nassau County PD").exists()


def test_the_preview_says_what_would_change_and_writes_nothing(
    officer, auxiliary, outsider, precinct17
):
    UserFactory(email="gone@agency.test", unit=precinct17, is_active=False)
    before = snapshot()

    preview = roster_preview.preview_records(
        roster.read_csv(
            roster_csv(
                f"new@agency.test,New Person,9001,PO,sworn,{TYPO},officer",
                f"{officer.email},{officer.name},{officer.badge},Detective,sworn,{P75},supervisor",
                f"{auxiliary.email},{auxiliary.name},{auxiliary.badge},{auxiliary.rank},"
                f"{auxiliary.member_class},{P17.upper()},{auxiliary.role}",
            )
        ),
        create_units=True,
    )

    assert [(row.line, row.name) for row in preview.new_people] == [(2, "New Person")]
    assert [(update.line, update.differences) for update in preview.updated_people] == [
        (
            3,
            [
                ("rank", officer.rank, "Detective"),
                ("role", "officer", "supervisor"),
                ("unit", P17, P75),
            ],
        )
    ]
    assert preview.unchanged == 1
    assert [(change.field, change.new) for change in preview.changes] == [("role", "supervisor")]
    assert [unit.name for unit in preview.new_units] == [f"{AGENCY} / Manhatan South", TYPO]
    assert preview.not_in_file == 1  # the outsider; not the deactivated person
    assert preview.keys == [preview.changes[0].key, *(unit.key for unit in preview.new_units)]
    assert snapshot() == before


def test_the_command_refuses_a_typo_with_the_suggestion(tmp_path, capsys, precinct17):
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text(f"{HEADER}\na@agency.test,A,1,PO,sworn,{TYPO},officer\n")

    with pytest.raises(CommandError, match="1 problem"):
        call_command("import_roster", str(csv_file))

    assert capsys.readouterr().err.splitlines() == [
        "line 2: no unit 'Manhatan South' under 'Metro Police Department'; "
        "did you mean 'Manhattan South'?"
    ]
    assert not User.objects.exists()


def test_the_command_lists_the_units_it_would_create_then_creates_them(
    tmp_path, capsys, precinct17
):
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text(f"{HEADER}\na@agency.test,A,1,PO,sworn,{P17} / Night Squad,officer\n")

    with pytest.raises(CommandError, match="run again with --confirm"):
        call_command("import_roster", str(csv_file), "--create-units")
    listed = capsys.readouterr().err.splitlines()
    nothing_yet = Unit.objects.filter(name="Night Squad").exists()
    call_command("import_roster", str(csv_file), "--create-units", "--confirm")

    assert listed == [f"line 2: new unit {P17} / Night Squad"]
    assert not nothing_yet
    assert "1 people created, 0 updated, 0 unchanged; 1 units created" in capsys.readouterr().out
    assert User.objects.get(email="a@agency.test").unit.name == "Night Squad"

"""The story's bulletins (July 2016), as the demo agency's commanders would have issued them."""

from datetime import timedelta

from bulletins.models import AgencyPolicy, Bulletin, BulletinTemplate, CannotComplyReason, Topic
from bulletins.services import approval, authoring, reading, templates
from portal.models import Unit

ORDER, ADVISORY, INTELLIGENCE = "order", "advisory", "intelligence"
IMMEDIATE, PRIORITY, ROUTINE = 1, 2, 3

# title, kind, priority, instruction, body, issuer, units (path below the agency), audience, hours
STORY = (
    (
        "All officers paired - no solo posts until further notice",
        ORDER, IMMEDIATE,
        "Work in pairs on every post and every tour. No solo posts.",
        "Following the attack on police officers in Dallas, **there will be no solo posts** "
        "until further notice. All officers will be paired up.\n\n"
        "- Commands will add foot posts where pairing leaves a post uncovered.\n"
        "- Report any threat against an officer to your supervisor at once.",
        "admin", [()], {"to_auxiliary": False, "to_civilian": False}, None,
    ),
    (
        "Auxiliary officers: do not report for field patrol",
        ORDER, IMMEDIATE,
        "Do not report for field patrol until further notice. Report to your command for "
        "station-house duties only.",
        "Auxiliary police officers carry only a baton. Until further notice they are taken off "
        "the street.",
        "admin", [()], {"to_sworn": False, "to_civilian": False}, None,
    ),
    (
        "Supervisors: do not assign auxiliary officers to patrol",
        ORDER, IMMEDIATE,
        "Do not assign auxiliary officers to any field post until further notice.",
        "Auxiliaries may be assigned to station-house duties only. Re-check every roll call.",
        "admin", [()], {"supervisors_only": True}, None,
    ),
    (
        "Station houses: armed officer posted at every entrance",
        ORDER, PRIORITY,
        "Post an armed officer at each public entrance of your station house, every tour.",
        "Commanding officers: extra security at precinct station houses starts with the next "
        "tour. Keep side doors locked; visitors are escorted.",
        "admin", [()], {"supervisors_only": True}, None,
    ),
    (
        "Check department vehicles for sabotage before every tour",
        ORDER, PRIORITY,
        "Before you drive, check your vehicle for tampering: tyres, brake lines, under the "
        "seats and the trunk.",
        "Report anything unusual to the desk officer and do not drive the vehicle.",
        "admin", [("Brooklyn South", "72nd Precinct")], {}, None,
    ),
    (
        "Patrols paired for 36 hours",
        ORDER, IMMEDIATE,
        "Work in pairs for the next 36 hours. Vary patrol patterns.",
        "All patrols in the borough are paired for 36 hours from the start of the next tour. "
        "Make patrol patterns less predictable: vary routes and meal locations.",
        "admin", [("Manhattan South",)], {}, 36,
    ),
    (
        "Threats against officers on social media",
        INTELLIGENCE, PRIORITY,
        "Be alert to people recording or following officers; report accounts that name you.",
        "Seventeen threats against officers have been received in the last few days, several "
        "on social-media sites. Each is being investigated. Details of the accounts involved "
        "are available from the precinct detective squad.",
        "admin", [("Brooklyn North", "75th Precinct")], {}, None,
    ),
    (
        "Protests planned this weekend",
        ADVISORY, ROUTINE,
        "Expect large crowds at the planned protests; keep to your assigned posts.",
        "There will be a substantial police presence at all protests to keep everyone safe and "
        "to make sure officers have support and backup. Protesters exercising First Amendment "
        "rights are to be protected.",
        "admin", [()], {}, 72,
    ),
)  # fmt: skip


# What the reader signs and answers, by story title (and template name): the station-house
# order asks each precinct for an "Implemented" report, the pairing order checks understanding.
STATION_HOUSE_REPORT = {
    "implemented_from": "units",
    "implemented_prompt": "Armed officer posted at each public entrance",
}
PAIRING_CHECK = {
    "questions": [
        {
            "question": "Can you work a post alone while this order is in force?",
            "choices": ["Yes, if my sergeant agrees", "No - every post is paired"],
            "answer": 1,
        }
    ]
}
RESPONSE_SETTINGS = {
    "All officers paired - no solo posts until further notice": PAIRING_CHECK,
    "Station houses: armed officer posted at every entrance": STATION_HOUSE_REPORT,
    "All officers paired": PAIRING_CHECK,  # the templates, by name
    "Station-house security": STATION_HOUSE_REPORT,
}
REASONS = ("No partner available", "Equipment missing", "Other")
TOPICS = (
    "Patrol staffing", "Auxiliary deployment", "Station security", "Vehicle checks",
    "Threat intelligence", "Crowd events",
)  # fmt: skip


def seed_agency_lists(agency):
    """The agency's default statement, reasons for "I cannot comply" and topics (those it does
    not have yet)."""
    AgencyPolicy.objects.get_or_create(agency=agency)
    for position, label in enumerate(REASONS):
        CannotComplyReason.objects.get_or_create(
            agency=agency, label=label, defaults={"position": position}
        )
    for position, name in enumerate(TOPICS):
        Topic.objects.get_or_create(agency=agency, name=name, defaults={"position": position})


# The topic of each story bulletin (by title) and template (by name). The borough's 36-hour
# pairing is under the department's pairing order: its author said it does not relax it, and
# the command overview shows the pair.
TOPIC_OF = {
    "All officers paired - no solo posts until further notice": "Patrol staffing",
    "Patrols paired for 36 hours": "Patrol staffing",
    "Auxiliary officers: do not report for field patrol": "Auxiliary deployment",
    "Supervisors: do not assign auxiliary officers to patrol": "Auxiliary deployment",
    "Station houses: armed officer posted at every entrance": "Station security",
    "Check department vehicles for sabotage before every tour": "Vehicle checks",
    "Threats against officers on social media": "Threat intelligence",
    "Protests planned this weekend": "Crowd events",
    "All officers paired": "Patrol staffing",
    "Auxiliaries off patrol": "Auxiliary deployment",
    "Station-house security": "Station security",
    "Vehicle check": "Vehicle checks",
    "Social-media threat": "Threat intelligence",
}
DOES_NOT_RELAX = {"Patrols paired for 36 hours"}


def topic_fields(agency, title):
    topic = Topic.objects.filter(agency=agency, name=TOPIC_OF.get(title)).first()
    return {"topic": topic, "does_not_relax": title in DOES_NOT_RELAX} if topic else {}


# The audience of a story bulletin or template before its own narrowing (`audience`).
EVERY_MEMBER = {
    "to_sworn": True, "to_auxiliary": True, "to_civilian": True, "supervisors_only": False,
}  # fmt: skip


def seed_bulletins(agency, people, *, now):
    """Publish the story's bulletins that the agency does not have yet (matched by title)."""
    existing = set(Bulletin.objects.filter(agency=agency).values_list("title", flat=True))
    published = 0
    for title, kind, priority, instruction, body, issuer, paths, audience, hours in STORY:
        if title in existing:
            continue
        units = [_unit(agency, path) for path in paths]
        fields = {**EVERY_MEMBER, **audience}
        draft = authoring.save_draft(
            by=people[issuer],
            targets=[(unit, True) for unit in units],
            now=now,
            title=title,
            instruction=instruction,
            body=body,
            kind=kind,
            priority=priority,
            effective_at=None,
            expires_at=now + timedelta(hours=hours) if hours else None,
            **fields,
            **RESPONSE_SETTINGS.get(title, {}),
            **topic_fields(agency, title),
        )
        needed = approval.approval_needed(draft, people[issuer])  # agency-wide: the chief's
        approver = people["chief"] if needed else None
        authoring.publish_bulletin(draft, by=people[issuer], now=now, approved_by=approver)
        published += 1
    if EXERCISE_TITLE not in existing:
        published += seed_exercise(agency, people, now=now)
    if AWAITING_TITLE not in existing:
        seed_awaiting_approval(agency, people, now=now)
    return published


AWAITING_TITLE = "Manhattan South: guard station-house entrances on every tour"


def seed_awaiting_approval(agency, people, *, now):
    """The 17th's sergeant writes to the whole borough, beyond his command: it waits for the
    borough commander's approval (the Awaiting approval page has one after `make run`)."""
    sergeant = people["sergeant"]
    draft = authoring.save_draft(
        by=sergeant,
        targets=[(_unit(agency, ("Manhattan South",)), True)],
        now=now,
        title=AWAITING_TITLE,
        instruction="Post an armed officer in the doorway of every station house, every tour.",
        body="After the attack in Dallas, an armed guard stands in the doorway of the 17th "
        "Precinct. Every station house in the borough does the same from the next tour.",
        kind=ORDER,
        priority=IMMEDIATE,
        effective_at=None,
        expires_at=None,
        **EVERY_MEMBER,
    )
    approval.submit_for_approval(draft, by=sergeant, now=now)


EXERCISE_TITLE = "Exercise: station-house lockdown drill"


def seed_exercise(agency, people, *, now):
    """A drill the sergeant ran for the 17th two hours ago, acknowledged by some: the Exercises
    page has results after `make run`."""
    sergeant, started = people["sergeant"], now - timedelta(hours=2)
    draft = authoring.save_draft(
        by=sergeant,
        targets=[(_unit(agency, ("Manhattan South", "17th Precinct")), True)],
        now=started,
        title=EXERCISE_TITLE,
        instruction="Lock the side doors and report to the desk officer when your post is secure.",
        body="A training drill, not a real order: practise the lockdown as you would for real.",
        kind=ORDER,
        priority=PRIORITY,
        effective_at=None,
        expires_at=started + timedelta(hours=24),
        is_exercise=True,
    )
    drill = authoring.publish_bulletin(draft, by=sergeant, now=started)
    reading.acknowledge(
        drill.pk, user=people["officer"], version_number=1, now=started + timedelta(minutes=7)
    )
    return 1


def _unit(agency, path):
    unit = agency
    for name in path:
        unit = Unit.objects.get_children(unit).get(name=name)
    return unit


# name, title, kind, priority, instruction, body, units (path below the agency), audience, hours
TEMPLATES = (
    (
        "All officers paired",
        "All officers paired - no solo posts",
        ORDER, IMMEDIATE,
        "Work in pairs on every post and every tour. No solo posts.",
        "**There will be no solo posts** until further notice. All officers will be paired up.\n\n"
        "- Commands will add foot posts where pairing leaves a post uncovered.\n"
        "- Report any threat against an officer to your supervisor at once.",
        [()], {"to_auxiliary": False, "to_civilian": False}, None,
    ),
    (
        "Auxiliaries off patrol",
        "Auxiliary officers: do not report for field patrol",
        ORDER, IMMEDIATE,
        "Do not report for field patrol until further notice. Report to your command for "
        "station-house duties only.",
        "Auxiliary police officers carry only a baton. Until further notice they are taken off "
        "the street.",
        [()], {"to_sworn": False, "to_civilian": False}, None,
    ),
    (
        "Station-house security",
        "Station houses: armed officer posted at every entrance",
        ORDER, PRIORITY,
        "Post an armed officer at each public entrance of your station house, every tour.",
        "Keep side doors locked; visitors are escorted.",
        [()], {"supervisors_only": True}, 72,
    ),
    (
        "Vehicle check",
        "Check department vehicles for tampering before every tour",
        ORDER, PRIORITY,
        "Before you drive, check your vehicle for tampering: tyres, brake lines, under the "
        "seats and the trunk.",
        "Report anything unusual to the desk officer and do not drive the vehicle.",
        [], {}, 72,
    ),
    (
        "Social-media threat",
        "Threats against officers on social media",
        INTELLIGENCE, PRIORITY,
        "Be alert to people recording or following officers; report accounts that name you.",
        "Threats against officers have been made on social-media sites. Each is being "
        "investigated. Details of the accounts involved are available from the precinct "
        "detective squad.",
        [], {}, 168,
    ),
)  # fmt: skip


def seed_templates(agency, people, *, now):
    """Create the story's templates the agency does not have yet (matched by name)."""
    existing = set(BulletinTemplate.objects.filter(agency=agency).values_list("name", flat=True))
    created = 0
    for name, title, kind, priority, instruction, body, paths, audience, hours in TEMPLATES:
        if name in existing:
            continue
        classes = {**EVERY_MEMBER, **audience}
        templates.create_template(
            by=people["admin"],
            now=now,
            agency=agency,
            name=name,
            suggested_units=[_unit(agency, path) for path in paths],
            title=title,
            instruction=instruction,
            body=body,
            kind=kind,
            priority=priority,
            duration=timedelta(hours=hours) if hours else None,
            review_interval=timedelta(hours=72),
            **classes,
            **RESPONSE_SETTINGS.get(name, {}),
            topic=topic_fields(agency, name).get("topic"),
        )
        created += 1
    return created

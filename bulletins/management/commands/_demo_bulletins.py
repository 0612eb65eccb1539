"""The story's bulletins (July 2016), as the demo agency's commanders would have issued them."""

from datetime import timedelta

from bulletins.models import Bulletin
from bulletins.services import authoring
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


def seed_bulletins(agency, people, *, now):
    """Publish the story's bulletins that the agency does not have yet (matched by title)."""
    existing = set(Bulletin.objects.filter(agency=agency).values_list("title", flat=True))
    published = 0
    for title, kind, priority, instruction, body, issuer, paths, audience, hours in STORY:
        if title in existing:
            continue
        units = [_unit(agency, path) for path in paths]
        fields = {
            "to_sworn": True, "to_auxiliary": True, "to_civilian": True,
            "supervisors_only": False, **audience,
        }  # fmt: skip
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
        )
        authoring.publish_bulletin(draft, by=people[issuer], now=now)
        published += 1
    return published


def _unit(agency, path):
    unit = agency
    for name in path:
        unit = Unit.objects.get_children(unit).get(name=name)
    return unit

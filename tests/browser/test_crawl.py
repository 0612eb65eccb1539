"""Every page each role can reach, at 360 px: a crawl from the feed along every same-origin link.

For each role: sign in on a phone, start at the feed, follow every link (navigation and in-page)
breadth first, and on every page check what the house rules promise: it loads (200: a broken link
fails with the page it was found on), it does not scroll sideways, no text is under 16 px, and axe
finds nothing serious or critical (axe once per route, the layout on every page). Each route (URL
name) is visited at most `PER_ROUTE` times so the crawl stays quick, and each role must reach a
minimum set of routes, so the crawl cannot silently shrink.
"""

import time
from collections import Counter, deque
from datetime import timedelta
from urllib.parse import urldefrag, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from bulletins import permissions
from portal.models import Unit, User
from tests.browser.conftest import PHONE, axe_violations
from tests.browser.test_accessibility import LAYOUT_FACTS, MIN_TEXT_PX
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Distinct URLs visited per route (URL name): two, but every bulletin of the story (in force,
# amended, with an attachment, lifted, ended) and the coverage of several.
PER_ROUTE_DEFAULT = 2
PER_ROUTE = {"bulletins:detail": 12, "bulletins:coverage": 4}
MAX_PAGES = 120  # a runaway crawl fails instead of running for minutes

# Not pages: sign-out, downloads (CSV, XML, Atom, attachments, recovery codes), the API and the
# Django admin (superusers only, Django's own layout).
SKIPPED_ROUTES = {
    "account_logout",
    "bulletins:attachment",
    "bulletins:recipients_csv",
    "bulletins:cap_alert",
    "bulletins:cap_cancel",
    "bulletins:cap_feed",
    "bulletins:unit_cap_feed",
    "audit:export",
    "mfa_download_recovery_codes",
}
SKIPPED_PREFIXES = ("/api/", "/admin/", "/static/", "/media/")
SKIPPED_SUFFIXES = (".csv", ".xml", ".atom", ".json", ".pdf", ".zip", ".txt")

EVERYONE = {
    "bulletins:feed",
    "bulletins:history",
    "bulletins:detail",
    "bulletins:tokens",
    "account_change_password",
    "mfa_index",
    "mfa_add_webauthn",
    "email_preferences",
    "bulletins:devices",
    "bulletins:roll_call",
    "offline",
    "bulletins:while_away",
}
SUPERVISING = EVERYONE | {
    "bulletins:preview",
    "bulletins:edit",
    "bulletins:create",
    "bulletins:overview",
    "bulletins:coverage",
    "bulletins:outstanding",
    "bulletins:evidence",
    "bulletins:person",
    "bulletins:amend",
    "bulletins:lift",
    "bulletins:remind",
    "bulletins:drafts",
    "bulletins:exercises",
    "bulletins:approvals",
    "bulletins:implemented_board",
    "bulletins:roll_call_detail",
    "bulletins:roll_call_print",
    "bulletins:roll_call_paper",
}
# Answering back: "I cannot comply" on every Order; "Report implemented" and resolving.
ANSWERING = {"bulletins:cannot_comply"}
CHAIN = ANSWERING | {"bulletins:implemented", "bulletins:resolve"}
# Route names the crawl must reach for each role.
PEOPLE = {
    "people",
    "people_units",
    "people_import",
    "person_add",
    "person_edit",
    "person_password_link",
    "person_move",
    "person_role",
    "person_leave",
    "unit_tours",
}
# The admins' Templates pages (a superuser with no agency of his own creates none).
TEMPLATES = {"bulletins:templates", "bulletins:template_edit"}
# The admins' Agency lists page (default statement, reasons for "cannot comply", topics).
AGENCY_LISTS = {"bulletins:agency_lists"}
# An approver's pages behind Awaiting approval (the sergeant's order to his borough).
APPROVING = {"bulletins:send_back", "bulletins:lift_on_review"}
MUST_REACH = {
    "officer": EVERYONE | ANSWERING,
    "auxiliary": EVERYONE | ANSWERING,
    "sergeant": SUPERVISING | CHAIN,
    "admin": SUPERVISING
    | PEOPLE
    | TEMPLATES
    | AGENCY_LISTS
    | APPROVING
    | ANSWERING
    | {"audit:events", "bulletins:template_create", "bulletins:resolve"},
    "superuser": SUPERVISING | PEOPLE | TEMPLATES | AGENCY_LISTS | {"audit:events"},
    "auditor": EVERYONE | {"audit:events"},
}

LINKS = """() => Array.from(document.querySelectorAll('a[href]'))
  .filter(a => !a.hasAttribute('download'))
  .map(a => a.href)"""


def _checked_order(sergeant, precinct17, now):
    """An Order with a check of understanding and its own statement: the questions above
    Acknowledge on the bulletin page, and the agency's lists for the admin's page."""
    from bulletins.models import CannotComplyReason, Topic
    from tests.factories import published_bulletin

    check = [{"question": "Can you work a post alone while this order is in force?",
              "choices": ["Yes, if my sergeant agrees", "No - every post is paired"],
              "answer": 1}]  # fmt: skip
    published_bulletin(
        sergeant, precinct17, now=now - timedelta(minutes=15), questions=check,
        title="Foot posts paired from the next tour", statement="I will not work a post alone.",
    )  # fmt: skip
    agency = Unit.objects.get(path=precinct17.agency_path)
    CannotComplyReason.objects.get_or_create(agency=agency, label="Other")
    Topic.objects.create(agency=agency, name="Crowd events", is_archived=True)


def _roll_calls(sergeant, officer, auxiliary, precinct17, now):
    """The 17th Precinct's Day roll calls: one finished (its code on the screen), one being
    called (the roster and the orders to tick)."""
    import datetime as dt

    from bulletins.services import roll_call
    from portal import tours
    from portal.models import Tour

    agency = Unit.objects.get(path=precinct17.agency_path)
    day, _ = Tour.objects.get_or_create(
        unit=agency, name="Day", defaults={"starts_at": dt.time(7), "ends_at": dt.time(15)}
    )
    tours.tours_changed(agency)
    User.objects.filter(pk__in=[officer.pk, auxiliary.pk]).update(tour="Day")
    earlier = now - timedelta(hours=1)
    done = roll_call.start_roll_call(unit=precinct17, tour=day, by=sergeant, now=earlier)
    versions = [o.current_version.pk for o in roll_call.orders_to_brief(done, earlier)]
    roll_call.finish_roll_call(
        done, present_ids=[officer.pk], briefed_version_ids=versions, by=sergeant, now=earlier
    )
    roll_call.start_roll_call(unit=precinct17, tour=day, by=sergeant, now=now)


def route_of(path):
    """The URL name of `path` ("bulletins:detail"), its route pattern if it has no name, or
    None if nothing answers it (a broken link: it is still visited, and fails)."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.view_name or match.route


class Crawl:
    """Breadth first from the feed, as one person: `visited` [(route, path)] and `problems`.

    A page that asks for the password again (adding a passkey, new recovery codes) gets it,
    once, and the crawl goes on to the page behind it."""

    def __init__(self, page, base, password):
        self.page = page
        self.host = urlsplit(base).netloc
        self.password = password
        self.visited = []
        self.problems = []
        self.checked_paths = set()
        self.axe_routes = set()
        self.axe_seconds = 0.0

    def run(self, unlinked=()):
        """From the feed, and from `unlinked` pages no link leads to (a form's POST does)."""
        queue = deque([("/", "the sign-in")])
        queue.extend((path, "nowhere (a form leads there)") for path in unlinked)
        seen = {path for path, _ in queue}
        per_route = Counter()
        reauthenticated = False
        while queue and len(self.visited) < MAX_PAGES:
            url, found_on = queue.popleft()
            route = route_of(urlsplit(url).path)
            if per_route[route] >= PER_ROUTE.get(route, PER_ROUTE_DEFAULT):
                continue
            per_route[route] += 1
            response = self.page.goto(url)
            landed = urlsplit(self.page.url)
            path = landed.path + (f"?{landed.query}" if landed.query else "")
            landed_route = route_of(landed.path)
            if path in self.checked_paths:
                continue
            if landed_route != route:
                per_route[landed_route] += 1
            self.visited.append((landed_route, path))
            if not self.check(path, landed_route, response, found_on):
                continue
            if landed_route == "account_reauthenticate" and not reauthenticated:
                reauthenticated = True
                self.reauthenticate()
                per_route[route] -= 1
                queue.appendleft((url, found_on))
                continue
            for link in self.links():
                if link not in seen:
                    seen.add(link)
                    queue.append((link, path))
        if queue and len(self.visited) >= MAX_PAGES:
            self.problems.append(f"more than {MAX_PAGES} pages: is the crawl in a loop?")
        return self

    def check(self, path, route, response, found_on, status=200):
        """The house rules on one page, axe on the first page of each route. False if the
        page did not load (its links are not followed)."""
        self.checked_paths.add(path)
        if (response.status if response else None) != status:
            answer = response.status if response else None
            self.problems.append(f"{path} (linked from {found_on}) answers {answer}")
            return False
        facts = self.page.evaluate(LAYOUT_FACTS, MIN_TEXT_PX)
        if facts["sideways"] > 0:
            self.problems.append(f"{path} scrolls sideways by {facts['sideways']} px at 360 px")
        if facts["small"]:
            self.problems.append(f"{path}: text under {MIN_TEXT_PX} px: {facts['small'][:5]}")
        if route not in self.axe_routes:
            self.axe_routes.add(route)
            started = time.monotonic()
            self.problems.extend(f"{path} axe: {found}" for found in axe_violations(self.page))
            self.axe_seconds += time.monotonic() - started
        return True

    def not_found_page(self):
        """What a mistyped address shows: the 404 page, under the same rules."""
        path = "/no-such-page/"
        response = self.page.goto(path)
        self.visited.append(("(404 page)", path))
        self.check(path, "(404 page)", response, "a mistyped address", status=404)
        return self

    def reauthenticate(self):
        self.page.get_by_label("Password").fill(self.password)
        self.page.locator("main form button[type=submit]").first.click()
        self.page.wait_for_load_state()

    def links(self):
        """Same-origin page links on this page, as path?query, without the skipped ones."""
        for href in self.page.evaluate(LINKS):
            parts = urlsplit(urldefrag(href)[0])
            local = parts.scheme in ("http", "https") and parts.netloc == self.host
            if local and not skipped(parts.path):
                yield parts.path + (f"?{parts.query}" if parts.query else "")


def skipped(path):
    if path.startswith(SKIPPED_PREFIXES) or path.endswith(SKIPPED_SUFFIXES):
        return True
    return route_of(path) in SKIPPED_ROUTES


@pytest.fixture
def superuser(db):
    """As `createsuperuser` makes one: no unit of their own."""
    return UserFactory(
        email="root@agency.test",
        name="Site Superuser",
        unit=None,
        role=User.Role.ADMIN,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def auditor(agency):
    return UserFactory(
        email="auditor@agency.test", name="Ines Auditor", unit=agency, role=User.Role.AUDITOR
    )


@pytest.fixture
def crawl_story(story, officer, auxiliary, sergeant, admin, precinct17, superuser, auditor):
    """The story, plus what makes every page have something on it: an amended order (by
    version), an extended one, a reminder, an attachment, an API token for everyone, and the
    audit trail all that leaves."""
    from bulletins.api import tokens
    from bulletins.services import attachments, authoring, chasing, reading
    from tests.factories import draft_bulletin

    now = timezone.now()
    amended = authoring.publish_bulletin(
        draft_bulletin(
            sergeant,
            precinct17,
            now=now - timedelta(hours=5),
            title="Radio checks every 30 minutes on foot posts",
            instruction="Call the dispatcher every 30 minutes while on a foot post.",
        ),
        by=sergeant,
        now=now - timedelta(hours=5),
    )
    reading.acknowledge(amended.pk, user=officer, version_number=1, now=now - timedelta(hours=4))
    authoring.amend_bulletin(
        amended,
        by=sergeant,
        now=now - timedelta(hours=2),
        reason="Checks every 20 minutes after the second incident.",
        is_material=True,
        instruction="Call the dispatcher every 20 minutes while on a foot post.",
    )
    reading.acknowledge(amended.pk, user=officer, version_number=2, now=now - timedelta(hours=1))
    authoring.amend_bulletin(
        story["vehicles"],
        by=sergeant,
        now=now - timedelta(minutes=40),
        reason="Extended: the threat stands.",
        is_material=False,
        expires_at=story["vehicles"].expires_at + timedelta(days=1),
    )
    chasing.send_manual_reminder(story["pairing"], by=admin, now=now - timedelta(minutes=30))
    # The second pair of eyes: one draft awaiting approval, one emergency awaiting review.
    from bulletins.services import approval

    borough = Unit.objects.get_parent(precinct17)
    waiting = draft_bulletin(sergeant, borough, title="Manhattan South: guard the entrances")
    approval.submit_for_approval(waiting, by=sergeant, now=now - timedelta(minutes=20))
    urgent = draft_bulletin(sergeant, borough, title="Manhattan South: no solo cars tonight")
    approval.publish_in_emergency(
        urgent, by=sergeant, now=now - timedelta(minutes=10), reason="Shots fired at a car."
    )
    _answers(story, officer, sergeant, now)

    draft = draft_bulletin(
        admin, precinct17, now=now - timedelta(hours=1), title="Wanted: photo of the suspect"
    )
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    attachments.attach_files(
        draft,
        [SimpleUploadedFile("suspect.pdf", pdf, "application/pdf")],
        ["application/pdf"],
        by=admin,
        now=now - timedelta(hours=1),
    )
    authoring.publish_bulletin(draft, by=admin, now=now - timedelta(hours=1))
    drill = authoring.publish_bulletin(
        draft_bulletin(
            sergeant,
            precinct17,
            now=now - timedelta(hours=3),
            title="Exercise: station-house lockdown drill",
            instruction="Lock the side doors and report to the desk officer.",
            is_exercise=True,
        ),
        by=sergeant,
        now=now - timedelta(hours=3),
    )
    reading.acknowledge(drill.pk, user=officer, version_number=1, now=now - timedelta(hours=2))
    from bulletins.services import templates

    templates.create_template(
        by=admin,
        now=now - timedelta(days=2),
        agency=story["pairing"].agency,
        name="All officers paired",
        suggested_units=[precinct17],
        title="All officers paired - no solo posts",
        instruction="Work in pairs on every post and every tour. No solo posts.",
        body="All officers will be **paired up**.",
        kind="order",
        priority=1,
        duration=None,
        review_interval=timedelta(hours=72),
        to_sworn=True,
        to_auxiliary=False,
        to_civilian=False,
        supervisors_only=False,
    )
    for person in (officer, auxiliary, sergeant, admin, superuser, auditor):
        tokens.issue_token(person, name="Precinct display board", now=now - timedelta(days=1))
        person.push_subscriptions.create(
            endpoint=f"https://fcm.googleapis.com/fcm/send/crawl-{person.pk}", p256dh="key",
            auth="secret", name="Chrome on Android", created_at=now - timedelta(days=1),
        )  # fmt: skip
    draft = draft_bulletin(
        sergeant,
        precinct17,
        now=now - timedelta(minutes=10),
        title="Draft: body cameras on for every stop",
        instruction="Switch the body camera on before every stop.",
    )
    _checked_order(sergeant, precinct17, now)
    _roll_calls(sergeant, officer, auxiliary, precinct17, now)
    superseded, superseding = _related_orders(story, sergeant, precinct17, now)
    return {**story, "amended": amended, "draft": draft, "superseded": superseded,
            "superseding": superseding}  # fmt: skip


def _answers(story, officer, sergeant, now):
    """Answering back: the officer cannot comply with the pairing order (open) and could not
    with the vehicle checks (resolved); the sergeant is asked to report the vehicle checks
    implemented."""
    from bulletins.models import Bulletin, BulletinVersion, CannotComplyReason
    from bulletins.services import responses

    vehicles = story["vehicles"]
    asked = {"implemented_from": "supervisors", "implemented_prompt": "Every car checked"}
    Bulletin.objects.filter(pk=vehicles.pk).update(**asked)
    BulletinVersion.objects.filter(bulletin=vehicles).update(**asked)
    vehicles.refresh_from_db()
    agency = story["pairing"].agency
    reason, _ = CannotComplyReason.objects.get_or_create(
        agency=agency, label="No partner available"
    )
    responses.cannot_comply(story["pairing"], user=officer, reason=reason, detail="Partner sick",
                            now=now - timedelta(minutes=15))  # fmt: skip
    answer = responses.cannot_comply(vehicles, user=officer, reason=reason, detail="",
                                     now=now - timedelta(minutes=40))  # fmt: skip
    responses.resolve(answer, by=sergeant, resolution="Paired with P.O. Diaz",
                      now=now - timedelta(minutes=30))  # fmt: skip


def _related_orders(story, sergeant, precinct17, now):
    """A superseding pair, the superseding order also the lower of a topic pair: a precinct
    order on Patrol staffing under the department's pairing order (the overview lists it)."""
    from bulletins.models import Bulletin, Topic
    from bulletins.services import authoring
    from tests.factories import draft_bulletin, published_bulletin

    staffing, _ = Topic.objects.get_or_create(
        agency=story["pairing"].agency, name="Patrol staffing"
    )
    Bulletin.objects.filter(pk=story["pairing"].pk).update(topic=staffing)
    superseded = published_bulletin(
        sergeant, precinct17, now=now - timedelta(hours=4),
        title="Foot posts: radio check every 30 minutes",
    )  # fmt: skip
    superseding = authoring.publish_bulletin(
        draft_bulletin(
            sergeant, precinct17, now=now - timedelta(minutes=90),
            title="17th Precinct: paired foot posts on Fifth Avenue",
            topic=staffing, does_not_relax=True, supersedes=[superseded],
        ),
        by=sergeant, now=now - timedelta(minutes=90),
    )  # fmt: skip
    return superseded, superseding


@pytest.mark.parametrize("role", list(MUST_REACH))
def test_every_page_a_role_can_reach_loads_fits_a_phone_and_passes_axe(
    role, crawl_story, request, as_person
):
    person = request.getfixturevalue(role)
    session = as_person(person, PHONE)
    started = time.monotonic()

    drafts = [crawl_story["draft"]] if permissions.can_manage(person, crawl_story["draft"]) else []
    # The offline page is what the service worker shows for a page it did not keep.
    unlinked = [reverse("offline")]
    # "While you were away" is reached by a redirect from the feed (test_while_away_page.py).
    unlinked += [reverse("bulletins:while_away")]
    unlinked += [reverse("bulletins:preview", args=[draft.pk]) for draft in drafts]

    crawl = Crawl(session.page, session.base, PASSWORD).run(unlinked).not_found_page()
    visited, problems = crawl.visited, crawl.problems

    seconds = time.monotonic() - started
    print(f"\n{role}: {len(visited)} pages in {seconds:.1f} s ({crawl.axe_seconds:.1f} s in axe)")
    for route, path in visited:
        print(f"  {route or 'no such page':32} {path}")
    assert problems == [], f"{role}:\n" + "\n".join(problems)
    if role in ("officer", "sergeant", "admin"):  # both pages of the superseding pair
        paths = {path for _, path in visited}
        for name in ("superseded", "superseding"):
            assert reverse("bulletins:detail", args=[crawl_story[name].pk]) in paths, name
    reached = {route for route, _ in visited}
    expected = MUST_REACH[role]
    assert expected - reached == set(), f"{role} never reached {sorted(expected - reached)}"

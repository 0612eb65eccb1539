"""Real Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a live server on the
test database. Nothing here downloads a browser.

Screenshots go to test-output/screenshots/<test-name>.png; with README_SCREENSHOTS=1 (`make
screenshots`) the ones the README shows are also copied to docs/screenshots/.
"""

import os
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import sync_playwright
from pytest_django.live_server_helper import LiveServer

from portal import mfa
from tests.factories import PASSWORD, TOTP_SECRET

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOTS = Path(django_settings.BASE_DIR) / "test-output" / "screenshots"
README_SCREENSHOTS = Path(django_settings.BASE_DIR) / "docs" / "screenshots"
AXE = Path(django_settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
POLL_SECONDS = 2


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, but static files go through WhiteNoise as in production
    (compressed, hashed names from the manifest) instead of Django's finder-based handler."""
    if static_files_changed():
        call_command("collectstatic", interactive=False, verbosity=0)
    server = LiveServer("localhost", start=False)
    server.thread.static_handler = lambda handler: handler
    server.start()
    yield server
    server.stop()


def static_files_changed():
    """Whether a file under static/ is newer than the last collectstatic (or there was none):
    the live server serves the collected copies, so an edited stylesheet would go untested."""
    manifest = Path(django_settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.exists():
        return True
    collected = manifest.stat().st_mtime
    sources = (Path(folder) for folder in django_settings.STATICFILES_DIRS)
    return any(
        path.stat().st_mtime > collected
        for folder in sources
        for path in folder.rglob("*")
        if path.is_file()
    )


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Playwright's sync API keeps an event loop running in this
    thread, so Django's guard against ORM calls from async code must be off while it runs."""
    if not os.access(CHROMIUM, os.X_OK) or not AXE.exists():
        pytest.fail(f"{CHROMIUM} or {AXE} is missing: run `make browser-deps`", pytrace=False)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def browser_settings(settings, live_server, monkeypatch):
    """Short polling so a journey waits seconds, not minutes; a cache namespace of its own so
    rate limits and used TOTP codes of other runs on the same Redis do not leak in."""
    from bulletins import dashboards, views

    monkeypatch.setattr(views, "FEED_POLL_SECONDS", POLL_SECONDS)
    monkeypatch.setattr(dashboards, "REFRESH_SECONDS", POLL_SECONDS)
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"browser-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches
    settings.SESSION_COOKIE_SECURE = False  # the live server speaks plain HTTP
    settings.CSRF_COOKIE_SECURE = False
    settings.SESSION_COOKIE_NAME = "sessionid"  # a __Host- cookie must be Secure
    settings.CSRF_COOKIE_NAME = "csrftoken"
    return settings


def totp_code(secret=TOTP_SECRET):
    """The current code, as allauth computes it; waits out the last second of a period so the
    code is still valid when the server checks it."""
    period = 30
    if period - time.time() % period < 1.5:
        time.sleep(period - time.time() % period + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // period))


def sign_in_page(page, user, password=PASSWORD):
    """Email and password; then the authenticator code if the portal asks for one."""
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("I have read the system use notice").check()
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    if "/2fa/authenticate" in page.url:
        page.get_by_label("Code").fill(totp_code())
        page.get_by_role("button", name="Sign In").click()
        page.wait_for_load_state()
    return page


class Session:
    """One person in their own browser context (own cookies), on one page."""

    def __init__(self, browser, live_server, viewport, **options):
        self.base = live_server.url
        self.context = browser.new_context(
            viewport=viewport, device_scale_factor=1, base_url=self.base, **options
        )
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()

    def goto(self, path):
        return self.page.goto(path)

    def sign_in(self, user, password=PASSWORD):
        return sign_in_page(self.page, user, password)

    def close(self):
        self.context.close()


@pytest.fixture
def open_session(browser, live_server):
    """`open_session(viewport=PHONE)` -> a Session; `.sign_in(user)` to become someone."""
    sessions = []

    def opener(viewport=DESKTOP, **options):
        session = Session(browser, live_server, viewport, **options)
        sessions.append(session)
        return session

    yield opener
    for session in sessions:
        session.close()


@pytest.fixture
def as_person(open_session):
    """A signed-in Session for `user` (enrolled in TOTP first when the portal requires it)."""

    def signed_in(user, viewport=DESKTOP, **options):
        if mfa.requires_mfa(user) and not mfa.has_totp(user):
            mfa.enrol_totp(user, TOTP_SECRET)
        session = open_session(viewport, **options)
        session.sign_in(user)
        return session

    return signed_in


@pytest.fixture
def screenshot(request):
    """`screenshot(page)` -> test-output/screenshots/<test-name>.png; `readme="x.png"` also
    copies it to docs/screenshots/x.png when README_SCREENSHOTS is set."""

    def take(page, step="", *, readme=None, full_page=True):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name + (f"--{step}" if step else "")
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        if readme and os.environ.get("README_SCREENSHOTS"):
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SCREENSHOTS / readme)
        return path

    return take


def axe_violations(page, *, impacts=("serious", "critical")):
    """Run axe-core (from node_modules, put there by `npm ci`) in the page; the violations of
    the given impacts, as readable lines."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP still applies to the page.
        page.evaluate(AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in impacts
    ]


@pytest.fixture
def story(agency, manhattan, precinct17, squad17, precinct75, officer, auxiliary, sergeant, admin):
    """The nights after Dallas, small: what is in force, acknowledged by some, and what ended."""
    from bulletins.services import authoring, reading
    from tests.factories import UserFactory, published_bulletin

    now = timezone.now()
    t0 = now - timedelta(minutes=95)
    crew = [
        UserFactory(name=name, unit=unit)
        for name, unit in [
            ("Kevin Osei", precinct17),
            ("Ana Petrovic", precinct17),
            ("Tom Brennan", squad17),
            ("Lena Hoffman", squad17),
            ("Raj Malhotra", precinct75),
            ("Grace Kim", precinct75),
        ]
    ]
    pairing = published_bulletin(
        admin,
        agency,
        now=t0,
        title="All officers paired - no solo posts until further notice",
        instruction="Work in pairs on every tour. No solo posts, no single-officer cars.",
        body="Effective immediately, **all** uniformed members are paired.\n\n"
        "- Report any solo assignment to the desk officer.\n- Keep radio contact every 30 minutes.",
    )
    vehicles = published_bulletin(
        sergeant,
        precinct17,
        now=t0 + timedelta(minutes=5),
        title="Check vehicles for tampering before every tour",
        instruction="Walk around and under the car, check brake lines and tyres before driving.",
        priority=2,
        expires_at=now + timedelta(hours=36),
    )
    protest = published_bulletin(
        admin,
        manhattan,
        now=t0 + timedelta(minutes=10),
        title="Protest march on Fifth Avenue tonight",
        instruction="Expect large crowds from 18:00 between 42nd and 59th Street.",
        kind="advisory",
        priority=3,
        expires_at=now + timedelta(hours=12),
    )
    for minutes, person in zip((3, 7, 12, 26, 41, 58), [sergeant, *crew], strict=False):
        reading.acknowledge(
            pairing.pk, user=person, version_number=1, now=t0 + timedelta(minutes=minutes)
        )
    reading.acknowledge(vehicles.pk, user=officer, version_number=1, now=t0 + timedelta(minutes=20))
    ended = published_bulletin(
        admin,
        manhattan,
        now=now - timedelta(days=2),
        title="Manhattan South: paired for 36 hours",
        priority=2,
        expires_at=now - timedelta(hours=12),
    )
    guarded = published_bulletin(
        sergeant,
        precinct17,
        now=now - timedelta(days=1),
        title="Station house: armed guard at the front desk",
        instruction="One armed officer at the front desk at all times.",
    )
    authoring.lift_bulletin(
        guarded,
        by=sergeant,
        now=now - timedelta(hours=3),
        reason="Threat assessed as not credible by the intelligence division.",
    )
    return {
        "pairing": pairing,
        "vehicles": vehicles,
        "protest": protest,
        "ended": ended,
        "lifted": guarded,
        "crew": crew,
    }

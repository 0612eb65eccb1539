"""Personas of the demo story: an agency with two boroughs, the 17th, 72nd and 75th Precincts."""

import copy
import datetime as dt
import time
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache as django_cache
from django.test import Client
from django.utils import timezone

from portal import mfa, sessions
from portal.middleware import MFA_ENROLLED
from portal.models import Unit, User
from tests.factories import PASSWORD, TOTP_SECRET, UserFactory, make_unit


class PortalClient(Client):
    """`force_login` stands for a complete, fresh sign-in: password and, for those who must
    have MFA, an authenticator app (enrolled with TOTP_SECRET when they have none) and its code.
    The session records it as allauth's sign-in and re-authentication would. Tests of the
    controls themselves use `django.test.Client` and sign in through the forms."""

    def force_login(self, user, backend=None):
        if mfa.requires_mfa(user) and not mfa.has_totp(user):
            mfa.enrol_totp(user, TOTP_SECRET)
        super().force_login(user, backend)
        now = time.time()
        session = self.session
        session["account_authentication_methods"] = [
            {"method": "password", "at": now, "reauthenticated": True}
        ]
        session["account_authentication_methods_user"] = str(user.pk)
        sessions.start_session_clock(session, now)
        if mfa.requires_mfa(user):
            session[MFA_ENROLLED] = user.pk
        session.save()


class RedisCommands:
    """The commands the shared client sends to Redis, by name, while inside the block."""

    def __enter__(self):
        self.client = django_cache._cache.get_client(write=True)
        self.sent = []
        original = self.client.execute_command

        def counting(*args, **kwargs):
            self.sent.append(args[0])
            return original(*args, **kwargs)

        self.client.execute_command = counting
        return self.sent

    def __exit__(self, *exc):
        del self.client.execute_command


@pytest.fixture
def redis_commands():
    """`with redis_commands() as sent:` - the Redis commands sent inside the block."""
    return RedisCommands


@pytest.fixture
def client():
    return PortalClient()


@pytest.fixture
def agency(db):
    return make_unit("Metro Police Department", kind=Unit.Kind.AGENCY)


@pytest.fixture
def manhattan(agency):
    return make_unit("Manhattan South", parent=agency, kind=Unit.Kind.BOROUGH)


@pytest.fixture
def brooklyn(agency):
    return make_unit("Brooklyn North", parent=agency, kind=Unit.Kind.BOROUGH)


@pytest.fixture
def precinct17(manhattan):
    return make_unit("17th Precinct", parent=manhattan, kind=Unit.Kind.PRECINCT)


@pytest.fixture
def squad17(precinct17):
    return make_unit("17th Precinct Anti-Crime", parent=precinct17, kind=Unit.Kind.SQUAD)


@pytest.fixture
def precinct75(brooklyn):
    return make_unit("75th Precinct", parent=brooklyn, kind=Unit.Kind.PRECINCT)


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def officer(precinct17):
    return UserFactory(email="officer@agency.test", name="Maria Lopez", unit=precinct17)


@pytest.fixture
def auxiliary(precinct17):
    return UserFactory(
        email="auxiliary@agency.test",
        name="Sam Auxiliary",
        unit=precinct17,
        member_class=User.MemberClass.AUXILIARY,
        rank="Auxiliary Police Officer",
    )


@pytest.fixture
def sergeant(precinct17):
    return UserFactory(
        email="sergeant@agency.test",
        name="Sgt. Dan Kowalski",
        unit=precinct17,
        role=User.Role.SUPERVISOR,
        rank="Sergeant",
    )


@pytest.fixture
def sergeant75(precinct75):
    """A supervisor of another precinct (the 75th)."""
    return UserFactory(
        email="sergeant75@agency.test",
        name="Sgt. Ana Ruiz",
        unit=precinct75,
        role=User.Role.SUPERVISOR,
    )


@pytest.fixture
def commander(manhattan):
    """The supervisor of Manhattan South, the borough above the 17th Precinct."""
    return UserFactory(
        email="commander@agency.test",
        name="Insp. Ray Donovan",
        unit=manhattan,
        role=User.Role.SUPERVISOR,
        rank="Deputy Inspector",
    )


@pytest.fixture
def outsider(precinct75):
    return UserFactory(email="outsider@agency.test", name="Pat Outsider", unit=precinct75)


@pytest.fixture
def admin(agency):
    return UserFactory(
        email="admin@agency.test",
        name="Chief Admin",
        unit=agency,
        role=User.Role.ADMIN,
        rank="Deputy Chief",
        is_staff=True,
    )


@pytest.fixture(scope="session", autouse=True)
def flush_past_the_audit_trigger():
    """A transactional test ends with Django's flush, one TRUNCATE of every table, which the
    audit table's trigger refuses (portal migration 0005). The flush runs the way replication
    tools load tables: with session_replication_role = replica (a superuser's setting, which
    skips ordinary triggers), for its own transaction only."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        original(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = original


# The security-control modules (test_mfa, test_lockout, ...) sign in through the real forms.
@pytest.fixture
def own_cache_keys(settings):
    """Rate limits and used TOTP codes live in the shared cache: a fresh key prefix per test."""
    caches = copy.deepcopy(django_settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-security-{uuid.uuid4().hex}"
    settings.CACHES = caches


# A known pattern of reading (test_dashboards, test_coverage).
@pytest.fixture
def squad_officer(squad17):
    return UserFactory(email="squad@agency.test", name="Squad Officer", unit=squad17)


@pytest.fixture
def pairing(admin, agency, officer, auxiliary, sergeant, outsider, squad_officer):
    """An agency-wide Order published 3 hours ago, with a known pattern of reading."""
    from bulletins.services import reading
    from tests.factories import published_bulletin

    minute = dt.timedelta(minutes=1)
    t0 = timezone.now() - dt.timedelta(hours=3)
    order = published_bulletin(admin, agency, now=t0, priority=1)
    for person, minutes in ((officer, 10), (auxiliary, 20), (sergeant, 50), (admin, 90)):
        reading.acknowledge(order.pk, user=person, version_number=1, now=t0 + minutes * minute)
    reading.record_open(order, order.versions.get(), user=outsider, now=t0 + 5 * minute)
    order.t0 = t0
    return order

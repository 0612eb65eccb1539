"""Schemathesis against /api/schema/: generated requests, valid and invalid, find no 5xx and
no response that breaks the schema.

The WSGI application runs in process, inside the test's transaction. Schemathesis's own pytest
loader (`from_fixture`) does not run on pytest 9 yet, so the test drives its Hypothesis
strategies directly: a bounded number of examples per operation and mode.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, note, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bulletins.api import tokens
from bulletins.models import Bulletin
from bulletins.services import authoring
from tests.factories import draft_bulletin, published_bulletin

EXAMPLES_PER_OPERATION = 10
EXAMPLES_PER_KNOWN_BULLETIN = 4
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app(db):
    """As Django's test client does: keep the connection (and the test's transaction) open
    at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def secrets(sergeant, officer, precinct17, squad17):
    """Bulletins in every state, and a token for an officer and for their supervisor."""
    now = timezone.now()
    in_force = published_bulletin(sergeant, precinct17, title="Pairs")
    authoring.amend_bulletin(
        in_force, by=sergeant, now=now, reason="Both shifts", is_material=True, title="Pairs 2"
    )
    lifted = published_bulletin(sergeant, squad17, kind="advisory")
    authoring.lift_bulletin(lifted, by=sergeant, now=now, reason="Over")
    published_bulletin(sergeant, precinct17, kind="intelligence", priority=3)
    draft_bulletin(sergeant, precinct17)
    return [
        tokens.issue_token(user, name="Schemathesis", now=now, is_read_only=False)[1]
        for user in (officer, sergeant)
    ]


@pytest.fixture
def known_ids(secrets):
    return list(Bulletin.objects.order_by("pk").values_list("pk", flat=True))


def run_operation(operation, mode, secrets, examples, **fixed):
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def check(case):
        note(f"{operation.label} ({mode.value}) {fixed}")
        for secret in secrets:
            headers = {"Authorization": f"Bearer {secret}"}
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS, headers=headers)

    check()


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
def test_the_api_keeps_to_its_schema(wsgi_app, secrets, known_ids, mode):
    headers = {"Authorization": f"Bearer {secrets[0]}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:
        run_operation(operation, mode, secrets, EXAMPLES_PER_OPERATION)
        if "{bulletin_id}" in operation.path and mode == schemathesis.GenerationMode.POSITIVE:
            # Random ids are nearly always 404: also aim at the bulletins that exist.
            for pk in known_ids:
                fixed = {"path_parameters": {"bulletin_id": pk}}
                run_operation(operation, mode, secrets, EXAMPLES_PER_KNOWN_BULLETIN, **fixed)

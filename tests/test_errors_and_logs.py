"""Error pages and logs: request ids, JSON log lines, and no secrets in either."""

import io
import json
import logging
import re
from http import HTTPStatus

import pytest
from django.contrib.auth.decorators import login_not_required
from django.test import Client
from django.urls import path, reverse

from portal.logs import PortalJsonFormatter, redact
from tests.factories import PASSWORD
from tests.sign_in import sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


@login_not_required
def _boom(request):
    raise RuntimeError("the database said no: password=hunter2")


urlpatterns = [path("boom", _boom)]
handler500 = "portal.views.server_error"


@pytest.fixture
def log_lines():
    """What the configured console handler writes (JSON lines)."""
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h.formatter, PortalJsonFormatter)
    )
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.setStream(previous)


@pytest.mark.urls("tests.test_errors_and_logs")
def test_a_server_error_shows_a_request_id_that_is_in_the_logs(log_lines):
    client = Client(raise_request_exception=False)

    response = client.get("/boom")

    request_id = response.headers["X-Request-ID"]
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert request_id in response.text
    assert "RuntimeError" not in response.text and "Traceback" not in response.text
    error = next(line for line in log_lines() if line["level"] == "ERROR")
    assert error["request_id"] == request_id
    assert "hunter2" not in json.dumps(error)
    assert "password=[redacted]" in error["exc_info"]


def test_a_sane_incoming_request_id_is_kept_and_a_strange_one_replaced(client):
    kept = client.get(reverse("healthz"), headers={"X-Request-ID": "lb-4f2a9c1e-77"})
    replaced = client.get(reverse("healthz"), headers={"X-Request-ID": "<script>alert(1)"})

    assert kept.headers["X-Request-ID"] == "lb-4f2a9c1e-77"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])


def test_the_not_found_page_carries_the_request_id(client, officer):
    client.force_login(officer)

    response = client.get("/no-such-page/")

    assert response.headers["X-Request-ID"] in response.text


def test_logs_are_json_and_carry_no_passwords_or_reset_tokens(log_lines, officer):
    client = Client()
    sign_in(client, officer.email, "wrong-password-123")
    sign_in(client, officer.email)
    logging.getLogger("django.request").warning(
        "Not Found: %s", "/accounts/password/reset/key/3f-abc123token/"
    )

    text = json.dumps(log_lines())

    assert PASSWORD not in text and "wrong-password-123" not in text
    assert "abc123token" not in text
    assert "/password/reset/key/[redacted]" in text


def test_redact_hides_secrets_in_query_strings():
    assert redact("GET /x?token=abc&page=2&password=p") == (
        "GET /x?token=[redacted]&page=2&password=[redacted]"
    )

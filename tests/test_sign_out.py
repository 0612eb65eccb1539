"""What the browser keeps: the end of a session clears it, the cookies carry `__Host-`."""

import datetime as dt
import os
import subprocess
import sys

import pytest
import time_machine
from django.conf import settings as django_settings
from django.urls import reverse

from tests.sign_in import START

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]
CLEAR_EVERYTHING = '"cache", "cookies", "storage"'


def test_signing_out_tells_the_browser_to_clear_the_sites_data(client, officer):
    client.force_login(officer)

    response = client.post(reverse("account_logout"))

    assert response.headers["Clear-Site-Data"] == CLEAR_EVERYTHING
    assert "_auth_user_id" not in client.session


def test_a_session_ended_by_the_idle_limit_clears_it_too(client, officer):
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(officer)
        traveller.shift(dt.timedelta(minutes=31))

        response = client.get(reverse("bulletins:feed"))

    assert response.url.startswith(reverse("account_login"))
    assert response.headers["Clear-Site-Data"] == CLEAR_EVERYTHING


def test_pages_of_a_session_that_goes_on_clear_nothing(client, officer):
    client.force_login(officer)

    response = client.get(reverse("bulletins:feed"))

    assert "Clear-Site-Data" not in response.headers


def test_session_and_csrf_cookies_carry_the_host_prefix_in_production(client, officer):
    client.get(reverse("account_login"))  # sets the CSRF cookie
    client.force_login(officer)

    for name in ("__Host-sessionid", "__Host-csrftoken"):
        cookie = client.cookies[name]
        assert cookie["secure"] is True, name
        assert cookie["path"] == "/", name
        assert not cookie["domain"], name
    assert "sessionid" not in client.cookies and "csrftoken" not in client.cookies


def test_over_plain_http_the_cookies_keep_their_plain_names():
    """`make run` and the browser suite speak HTTP: a browser drops a `__Host-` cookie that is
    not Secure."""
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME, s.SESSION_COOKIE_SECURE)"
    )
    env = {
        **os.environ,
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }

    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.split() == ["sessionid", "csrftoken", "False"]

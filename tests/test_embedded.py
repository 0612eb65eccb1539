"""The embedded default of `make run`: SQLite and kombu's filesystem broker, no server needed."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

from django.conf import settings


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY"}
    }
    env.update(DJANGO_DEBUG="true", PORTAL_VAR_DIR=str(var_dir))
    return env


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_embedded_default_migrates_and_serves_the_sign_in_page(tmp_path):
    env = embedded_env(tmp_path)
    manage = [sys.executable, "manage.py"]
    later = (datetime.now(UTC) + timedelta(days=4)).isoformat()
    for command in (["migrate", "--no-input", "-v", "0"], ["seed_demo"], ["sweep", "--at", later]):
        seeded = subprocess.run([*manage, *command], cwd=settings.BASE_DIR, env=env, check=True,
                       timeout=180, capture_output=True)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, page = get(f"http://127.0.0.1:{port}/accounts/login/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        health_status, health = get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert (tmp_path / "portal.sqlite3").exists()
    # Four days on: the 36-hour pairing order, the 72-hour protest advisory and the drill ended.
    assert "ended: 3" in seeded.stdout.decode()
    assert "reminders: 0" not in seeded.stdout.decode()
    assert status == HTTPStatus.OK
    assert 'name="password"' in page
    assert health_status == HTTPStatus.OK
    assert '"vendor": "sqlite"' in health
    assert "filesystem" in health.lower()


def make_run_commands(**variables):
    """What `make run` would run (`make -n`: nothing is started)."""
    env = {key: value for key, value in os.environ.items() if key != "SITE_URL"}
    arguments = [f"{name}={value}" for name, value in variables.items() if name != "SITE_URL"]
    if "SITE_URL" in variables:
        env["SITE_URL"] = variables["SITE_URL"]
    result = subprocess.run(["make", "-n", "run", *arguments], cwd=settings.BASE_DIR, env=env,
                            check=True, capture_output=True, text=True, timeout=60)  # fmt: skip
    commands = result.stdout.replace("\\\n", " ").splitlines()
    return [command for command in commands if "honcho start" in command]


def test_make_run_links_to_the_port_it_runs_on_unless_site_url_is_set():
    on_8123 = make_run_commands(PORT="8123")
    behind_a_proxy = make_run_commands(PORT="8123", SITE_URL="https://portal.example.org")

    assert len(on_8123) == 1 and 'SITE_URL="http://localhost:8123"' in on_8123[0]
    assert 'SITE_URL="https://portal.example.org"' in behind_a_proxy[0]
    assert "localhost" not in behind_a_proxy[0].split("SITE_URL=")[1].split()[0]

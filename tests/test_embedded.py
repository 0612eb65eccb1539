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
    assert "ended: 2" in seeded.stdout.decode()
    assert "reminders: 0" not in seeded.stdout.decode()
    assert status == HTTPStatus.OK
    assert 'name="password"' in page
    assert health_status == HTTPStatus.OK
    assert '"vendor": "sqlite"' in health
    assert "filesystem" in health.lower()

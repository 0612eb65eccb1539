"""The deployment files in docs/deploy parse, and say what docs/scaling.md says they say; `make
run` and its Procfile keep the demo on this machine and off debug mode."""

import configparser
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from gunicorn.config import Config

ROOT = Path(settings.BASE_DIR)
DEPLOY = ROOT / "docs" / "deploy"
# What the test run sets and `make run` leaves to its own defaults.
EMBEDDED_UNSET = {
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "HOST",
    "DJANGO_DEBUG", "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_COOKIES",
}  # fmt: skip
UNITS = ["portal-web.service", "portal-worker.service", "portal-beat.service"]


def load_gunicorn_config(monkeypatch, **environ):
    for name in ("GUNICORN_BIND", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_ACCESS_LOG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    namespace = {"__file__": str(DEPLOY / "gunicorn.conf.py")}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    config = Config()
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_gunicorn_config_loads_with_threads_per_process(monkeypatch):
    config = load_gunicorn_config(monkeypatch)

    assert config.worker_class_str == "gthread"
    assert config.workers >= 2
    assert config.threads == 4
    assert config.address == [("0.0.0.0", 8000)]
    assert config.preload_app is True


def test_gunicorn_config_is_sized_from_the_environment(monkeypatch):
    config = load_gunicorn_config(
        monkeypatch,
        WEB_CONCURRENCY="9",
        GUNICORN_THREADS="2",
        GUNICORN_BIND="127.0.0.1:8071",
        GUNICORN_ACCESS_LOG="",
    )

    assert (config.workers, config.threads) == (9, 2)
    assert config.address == [("127.0.0.1", 8071)]
    assert config.accesslog is None


@pytest.mark.parametrize("name", UNITS)
def test_systemd_units_parse_and_start_the_portal(name):
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str

    unit.read_string((DEPLOY / name).read_text())

    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert service["ExecStart"].startswith("/srv/portal/.venv/bin/")
    assert service["EnvironmentFile"] == "/etc/portal/portal.env"
    assert service["Restart"] == "always"


def test_there_is_exactly_one_beat_and_the_web_uses_the_gunicorn_config():
    commands = {name: configparser.ConfigParser(interpolation=None) for name in UNITS}
    for name, unit in commands.items():
        unit.read_string((DEPLOY / name).read_text())

    assert "gunicorn.conf.py" in commands["portal-web.service"]["Service"]["ExecStart"]
    assert " beat " in commands["portal-beat.service"]["Service"]["ExecStart"]
    assert " beat " not in commands["portal-worker.service"]["Service"]["ExecStart"]


def test_procfile_lists_each_process_once():
    lines = [line for line in (DEPLOY / "Procfile").read_text().splitlines() if line.strip()]
    processes = dict(line.split(":", 1) for line in lines)

    assert len(processes) == len(lines)
    assert set(processes) == {"web", "worker", "beat", "release"}
    assert "docs/deploy/gunicorn.conf.py" in processes["web"]
    assert "celery -A portal beat" in processes["beat"]


def test_environment_example_names_what_production_requires():
    lines = (DEPLOY / "portal.env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}

    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS"} <= names
    assert "DJANGO_DEBUG" in names


def test_the_wsgi_module_imports_every_view_before_the_first_request():
    """With preload_app, gunicorn's master imports portal.wsgi once; the URLconf (views, API),
    the table `reverse()` reads and the Celery task registry must come with it, not with each
    worker's first request."""
    probe = (
        "import sys, portal.wsgi; from portal.celery import app; "
        "from django.urls import get_resolver; "
        "print(all(m in sys.modules for m in ('bulletins.views', 'bulletins.api.views', "
        "'bulletins.tasks', 'portal.tasks')) and app.finalized and get_resolver()._populated)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.strip() == "True"


# `make run`: this machine only, and the portal's own error pages


def run_command_env(host=None):
    """The environment `make run` gives honcho (web, worker, beat), from `make -n run`."""
    overrides = [f"HOST={host}"] if host else []
    environ = {key: value for key, value in os.environ.items() if key != "HOST"}
    dry_run = subprocess.run(
        ["make", "-n", "run", *overrides],
        cwd=settings.BASE_DIR, env=environ, capture_output=True, text=True, check=True,
    )  # fmt: skip
    commands = dry_run.stdout.replace("\\\n", " ").splitlines()
    start = next(line for line in commands if "honcho start" in line)
    prefix = start.split(".venv/bin/honcho start")[0]
    with tempfile.TemporaryDirectory() as scratch:  # where $(cat var/secret-key) reads
        Path(scratch, "var").mkdir()
        Path(scratch, "var", "secret-key").write_text("k" * 64)
        shown = subprocess.run(
            ["bash", "-c", f"{prefix} env -0"],
            cwd=scratch, env={}, capture_output=True, text=True, check=True,
        )  # fmt: skip
    return dict(item.split("=", 1) for item in shown.stdout.split("\0") if "=" in item)


def procfile_web_bind(environ):
    """The address the Procfile's web process binds, the shell expanding it as honcho does."""
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    shown = subprocess.run(
        ["sh", "-c", "echo " + web.removeprefix("web:").strip()],
        env=environ, capture_output=True, text=True, check=True,
    )  # fmt: skip
    arguments = shown.stdout.split()
    return arguments[arguments.index("--bind") + 1]


def test_make_run_listens_on_this_machine_only_unless_host_is_set():
    default = run_command_env()
    chosen = run_command_env(host="0.0.0.0")

    assert procfile_web_bind(default) == "127.0.0.1:8000"
    assert procfile_web_bind(chosen) == "0.0.0.0:8000"
    assert procfile_web_bind({}) == "127.0.0.1:8000"  # honcho without make


def test_make_run_is_not_debug_and_a_missing_page_is_the_portals_own(tmp_path):
    """Debug mode's 404 lists every URL of the portal; its 500, the settings."""
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)
    (tmp_path / "static").symlink_to(settings.STATIC_ROOT)
    embedded = {key: value for key, value in os.environ.items() if key not in EMBEDDED_UNSET}
    environ = {**embedded, **run_command_env(), "PORTAL_VAR_DIR": str(tmp_path)}
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from django.test import Client; page = Client().get('/no-such-page/'); "
        "print(s.DEBUG, page.status_code, 'Page not found' in page.text, "
        "'URLconf' in page.text, s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=settings.BASE_DIR, env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "404", "True", "False", "False", "False"]

"""The deployment files in docs/deploy parse, and say what docs/scaling.md says they say."""

import configparser
from pathlib import Path

import pytest
from django.conf import settings
from gunicorn.config import Config

DEPLOY = Path(settings.BASE_DIR) / "docs" / "deploy"
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
    import os
    import subprocess
    import sys

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

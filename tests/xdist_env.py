"""Loaded first (`-p tests.xdist_env`, before Django reads its settings): when the suite runs
in several processes (pytest-xdist), each gets a Celery queue and cache key prefix of its own,
as it gets a test database of its own, so one process's worker or cache never serves another."""

import os

WORKER = os.environ.get("PYTEST_XDIST_WORKER")

if WORKER:
    for name, default in (("CELERY_QUEUE", "celery"), ("CACHE_KEY_PREFIX", "portal")):
        os.environ[name] = f"{os.environ.get(name, default)}-{WORKER}"

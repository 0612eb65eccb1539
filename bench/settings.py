"""Settings for `make bench`: the portal's production settings, plus the floor views and the
peer (django-notifications-community, installed only in the bench dependency group) served by
the same process, so portal and floor run under the same gunicorn settings."""

from importlib.util import find_spec

from portal.settings import *  # noqa: F403

# The peer is installed by `make bench` (the bench dependency group); `bench/answers.py` run on
# its own at a small scale does without it.
if find_spec("notifications"):
    INSTALLED_APPS = [*INSTALLED_APPS, "notifications"]  # noqa: F405
ROOT_URLCONF = "bench.floor"
# Email delivery is not measured here: its tasks go to a queue the bench's worker does not
# consume, so the worker only runs what is measured (writing recipient rows after publication).
CELERY_TASK_ROUTES = {
    "bulletins.tasks.deliver_event_task": {"queue": "bench-notifications"},
    "bulletins.tasks.send_notifications_task": {"queue": "bench-notifications"},
}

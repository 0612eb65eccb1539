import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def queue_after_commit(name, *args):
    """Queue the task registered as `name` once the current transaction commits (at once
    outside one). By name, not by import: the services that queue tasks are the ones the tasks
    call, and importing each other would tie them in a circle."""
    if name not in app.tasks:
        app.loader.import_default_modules()  # the tasks modules (autodiscovery), once
    app.tasks[name].delay_on_commit(*args)


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task=None, **kwargs):
    """Around each task, what Django does around each request: drop a database connection that
    is broken or older than CONN_MAX_AGE, and check the next one's health before use.

    Celery's own Django fix-up closes the connection before and after every task instead (a new
    PostgreSQL backend per task, cold caches included) unless CELERY_DB_REUSE_MAX is set; the
    settings set it, so the fix-up only recycles the connection every few hundred tasks. A task
    run eagerly belongs to its caller's request or transaction and is left alone."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# Load now what each process would otherwise load on its first requests: the URLconf, and with
# it every view and the API (about 0.8 s: django-ninja, pydantic, allauth's MFA views), the
# table `reverse()` reads (about 40 ms, inside the first request that redirects), and the
# Celery app's task registry (about 0.1 s, at the first publication's .delay()). Under
# gunicorn's preload_app this happens once, in the master, before the workers fork.
get_resolver().url_patterns  # noqa: B018
get_resolver().reverse_dict  # noqa: B018

from portal.celery import app as celery_app  # noqa: E402

celery_app.loader.import_default_modules()  # the tasks modules (autodiscovery)
celery_app.finalize(auto=True)

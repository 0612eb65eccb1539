import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

# Import the URLconf, and with it every view and the API, now rather than in each process's
# first request (about 0.8 s: django-ninja, pydantic, allauth's MFA views). Under gunicorn's
# preload_app this happens once, in the master, before the workers fork.
get_resolver().url_patterns  # noqa: B018

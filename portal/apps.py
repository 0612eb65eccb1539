import os

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "People and units"

    def ready(self):
        from django.conf import settings

        from portal import auth_events, checks  # noqa: F401 - registers the deploy checks

        auth_events.connect()
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            for folder in settings.CELERY_BROKER_TRANSPORT_OPTIONS.values():
                if isinstance(folder, str):
                    os.makedirs(folder, exist_ok=True)

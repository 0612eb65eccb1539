from django.conf import settings


def portal(request):
    return {
        "portal_name": settings.PORTAL_NAME,
        "request_id": getattr(request, "request_id", ""),
        "system_use_notice": settings.SYSTEM_USE_NOTICE,
    }

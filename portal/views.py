from http import HTTPStatus

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponseServerError, JsonResponse
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app


def _database_state():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means "down"; the type is reported
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _broker_state():
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "transport": str(transport)}


@login_not_required
@never_cache
@require_GET
def healthz(request):
    checks = {"database": _database_state(), "broker": _broker_state()}
    healthy = all(check["ok"] for check in checks.values())
    status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks}, status=status)


def server_error(request):
    """The 500 page, with the request id that the error's log lines carry. It renders with no
    context processors: the database may be what failed."""
    context = {"request_id": getattr(request, "request_id", "")}
    return HttpResponseServerError(loader.get_template("500.html").render(context))

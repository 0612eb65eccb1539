from http import HTTPStatus

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from portal import audit
from portal.celery import app as celery_app
from portal.models import User


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


@login_not_required
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links: send them to the portal's icon."""
    response = redirect(static("favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


def server_error(request):
    """The 500 page, with the request id that the error's log lines carry. It renders with no
    context processors: the database may be what failed."""
    context = {"request_id": getattr(request, "request_id", "")}
    return HttpResponseServerError(loader.get_template("500.html").render(context))


class EmailPreferenceForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["wants_email"]
        labels = {"wants_email": "Email me about Orders and advisories that are not urgent"}
        help_texts = {
            "wants_email": "Urgent orders (Officer safety - immediate) are always emailed.",
        }


@require_http_methods(["GET", "POST"])
def email_preferences(request):
    data = request.POST if request.method == "POST" else None
    form = EmailPreferenceForm(data, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        audit.record("person.email_preference", by=request.user, obj=request.user,
                     request=request, wants_email=form.cleaned_data["wants_email"])  # fmt: skip
        messages.success(request, "Saved.")
        return redirect("email_preferences")
    return render(request, "portal/email_preferences.html", {"form": form})

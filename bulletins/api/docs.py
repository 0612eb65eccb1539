"""The OpenAPI schema and the Swagger UI page, with Swagger UI's files served from the copy that
ships inside django-ninja: nothing loads from a CDN."""

import mimetypes
from pathlib import Path

import ninja
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from bulletins.api.auth import session_or_token

SWAGGER_DIR = Path(ninja.__file__).parent / "static" / "ninja"
SWAGGER_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-init.js", "favicon.png"}
)


@require_GET
@session_or_token
def schema(request, api):
    return JsonResponse(api.get_openapi_schema(path_prefix=reverse("api:v1:api-root")))


@require_GET
def docs(request):
    settings = {"url": reverse("api:schema"), "layout": "BaseLayout", "deepLinking": True}
    return render(request, "bulletins/api_docs.html", {"swagger_settings": settings})


@login_not_required
@require_GET
def docs_asset(request, name):
    if name not in SWAGGER_FILES:
        raise Http404
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse((SWAGGER_DIR / name).open("rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response

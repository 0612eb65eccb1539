"""/api/: version 1 of the JSON API, its OpenAPI schema and its docs page.

The API authenticates every request itself (a token or the session), so its operations are
exempt from LoginRequiredMiddleware, whose redirect to a sign-in page means nothing to a machine.
"""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from ninja import NinjaAPI

from bulletins.api import docs, errors, views
from bulletins.api.auth import BearerToken, SessionCookie

app_name = "api"

api = NinjaAPI(
    title="Officer Safety Bulletins API",
    version="1",
    description=(
        "Send a personal API token (made on your profile page; read-only unless you allowed "
        "changes) as `Authorization: Bearer <token>`, or use your signed-in session with the "
        "`X-CSRFToken` header on changes; a session publishing or lifting needs a sign-in "
        "within the last 5 minutes. Too many refused tokens from one address get 429. "
        "Errors are `{code, message, field, errors}`."
    ),
    urls_namespace="api:v1",
    openapi_url=None,
    docs_url=None,
    auth=[BearerToken(), SessionCookie()],
)
errors.install(api)
api.add_router("/v1/", views.router)


def _operations(urls):
    patterns, app, namespace = urls
    for pattern in patterns:
        if pattern.name != "api-root":
            login_not_required(pattern.callback)
    return patterns, app, namespace


urlpatterns = [
    path("schema/", docs.schema, {"api": api}, name="schema"),
    path("docs/", docs.docs, name="docs"),
    path("docs/assets/<str:name>", docs.docs_asset, name="docs_asset"),
    path("", _operations(api.urls)),
]

"""Installable and readable offline: the web app manifest, the service worker, the offline page.

The worker (`templates/sw.js`, served at `/sw.js` for the whole site) keeps on the device a copy
of what `bulletins.offline` lists for the signed-in person, in caches named by `account_key`:
never the user id, and a different key wipes the copy of the one before. What goes in the copy is
fetched by the worker with `OFFLINE_COPY_HEADER` (and the auto-refresh header: making the copy is
not activity that keeps a session alive).
"""

import hashlib
import json
import re
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.template import engines
from django.templatetags.static import PrefixNode, static
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_GET

from portal.sessions import SIGNED_IN_AT

OFFLINE_COPY_HEADER = "Portal-Offline-Copy"
THEME_COLOR = "#0a4da3"
THEME_COLOR_DARK = "#121417"
BACKGROUND_COLOR = "#ffffff"
ICONS = [
    {"src": "icons/icon-192.png", "sizes": "192x192", "purpose": "any"},
    {"src": "icons/icon-512.png", "sizes": "512x512", "purpose": "any"},
    {"src": "icons/maskable-512.png", "sizes": "512x512", "purpose": "maskable"},
]
# Kept by the worker when it installs (hashed names: a new deployment installs a new worker).
PRECACHE = [
    "css/portal.css",
    "js/offline.js",
    "favicon.svg",
    "icons/icon-192.png",
    "js/offline-ack.js",
    "js/sw-ack.js",
]
# Loaded into the worker: acknowledging offline (issue 22b) and Web Push (issue 22c).
WORKER_IMPORTS = ["js/sw-ack.js", "js/sw-push.js"]


def account_key(user):
    """Names the person's copy on a device without saying who they are."""
    return salted_hmac("portal.offline.account", str(user.pk), algorithm="sha256").hexdigest()[:32]


def session_ends_at(session):
    """When the session reaches its absolute limit (seconds since the epoch): the copy with it."""
    signed_in_at = session.get(SIGNED_IN_AT) or time.time()
    return signed_in_at + settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS


def is_offline_copy(request):
    """A page fetched by the worker for the device's copy, not opened by its reader."""
    return request.headers.get(OFFLINE_COPY_HEADER) == "true"


@login_not_required
@require_GET
def manifest(request):
    data = {
        "id": "/",
        "name": settings.PORTAL_NAME,
        "short_name": "Bulletins",
        "description": "Orders and alerts in force for you, readable without a connection.",
        "start_url": reverse("bulletins:feed"),
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [{**icon, "src": static(icon["src"]), "type": "image/png"} for icon in ICONS],
    }
    response = JsonResponse(data, content_type="application/manifest+json")
    response["Cache-Control"] = "no-cache"
    return response


def _static_urls(names):
    """Hashed URLs of those that exist (a file another helper has not written yet is left out)."""
    urls = []
    for name in names:
        try:
            urls.append(static(name))
        except ValueError:  # not in the manifest of collected files
            continue
    return urls


def _htmx_url():
    tag = engines["django"].from_string("{% load django_htmx %}{% htmx_script %}").render()
    found = re.search(r'src="([^"]+)"', tag)
    return [found.group(1)] if found else []


def worker_config():
    precache = _static_urls(PRECACHE) + _htmx_url()
    imports = _static_urls(WORKER_IMPORTS)
    config = {
        "staticPrefix": PrefixNode.handle_simple("STATIC_URL"),
        "precache": precache,
        "imports": imports,
        "bundleUrl": reverse("bulletins:offline_bundle"),
        "offlinePage": reverse("offline"),
        "logoutPath": reverse("account_logout"),
        "accountsPrefix": "/accounts/",
        "copyHeader": OFFLINE_COPY_HEADER,
    }
    config["version"] = hashlib.sha256(json.dumps(config).encode()).hexdigest()[:12]
    return config


@login_not_required
@require_GET
def service_worker(request):
    response = render(
        request,
        "sw.js",
        {"config": json.dumps(worker_config(), indent=2)},
        content_type="text/javascript; charset=utf-8",
    )
    # The browser checks for a new worker on each navigation; no-cache makes it ask us.
    response["Cache-Control"] = "no-cache"
    return response


@login_not_required
@require_GET
def offline_page(request):
    """What the worker shows for a page it did not keep; fetched without cookies, for anyone."""
    return render(request, "offline.html")

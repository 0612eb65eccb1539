"""The "Devices" page of a person's account: alert this device (a Web Push subscription), see
the devices that alert them, stop alerts on one. Only ever the person's own devices."""

import base64
import binascii
import json
import re
from http import HTTPStatus

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from bulletins.services import push
from portal import audit
from portal.models import PushSubscription

MAX_DEVICES = 10
BROWSERS = [  # the first that matches names the browser
    ("EdgA?/|Edg/", "Edge"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("OPR/|Opera", "Opera"),
    ("Firefox/|FxiOS/", "Firefox"),
    ("Chrome/|CriOS/|Chromium/", "Chrome"),
    ("Safari/", "Safari"),
]
SYSTEMS = [
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh|Mac OS X", "Mac"),
    ("Linux", "Linux"),
]


def device_name(user_agent):
    """ "Chrome on Android": a name a person recognises, from the browser's user agent."""
    browser = next((name for pattern, name in BROWSERS if re.search(pattern, user_agent)), "")
    system = next((name for pattern, name in SYSTEMS if re.search(pattern, user_agent)), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Browser"


def _key(text, length):
    """The base64url key `text` decoded, if it decodes to `length` bytes; else None."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == length else None


def subscription_error(data):
    """Why the subscription JSON a browser gave cannot be kept ("" when it can)."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        return "The browser did not send a subscription."
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 2000:
        return "The device's push address is missing or too long."
    if problem := push.endpoint_error(endpoint):
        return problem
    public = _key(data["keys"].get("p256dh"), 65)
    if public is None or public[0] != 4:
        return "The device's public key is not a P-256 key."
    if _key(data["keys"].get("auth"), 16) is None:
        return "The device's auth secret is not 16 bytes."
    return ""


@never_cache
@require_GET
def devices(request):
    context = {
        "devices": request.user.push_subscriptions.order_by("-created_at"),
        "is_enabled": push.is_enabled(),
        "vapid_public_key": settings.VAPID_PUBLIC_KEY,
        "max_devices": MAX_DEVICES,
    }
    return render(request, "portal/devices.html", context)


def _refuse(message, status=HTTPStatus.BAD_REQUEST):
    return JsonResponse({"error": message}, status=status)


@require_POST
@transaction.atomic
def device_add(request):
    """Keep the subscription this browser made (JSON body). The same device asked for by
    another person moves to them: it alerts whoever last asked for alerts on it."""
    if not push.is_enabled():
        return _refuse("Lock-screen alerts are not switched on for this portal.")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if problem := subscription_error(data):
        return _refuse(problem)
    found = PushSubscription.objects.select_for_update().filter(endpoint=data["endpoint"]).first()
    mine = request.user.push_subscriptions.exclude(endpoint=data["endpoint"]).count()
    if mine >= MAX_DEVICES:
        return _refuse(
            f"You already have {MAX_DEVICES} devices with alerts: stop alerts on one first."
        )
    values = {
        "user": request.user,
        "p256dh": data["keys"]["p256dh"],
        "auth": data["keys"]["auth"],
        "name": device_name(request.headers.get("User-Agent", ""))[:200],
    }
    if found is None:
        found = PushSubscription.objects.create(
            endpoint=data["endpoint"], created_at=timezone.now(), **values
        )
    else:
        previous = found.user_id
        PushSubscription.objects.filter(pk=found.pk).update(**values)
        if previous != request.user.pk:
            audit.record("push.device_removed", by=request.user, obj=found, request=request,
                         device=found.name, moved_from=previous)  # fmt: skip
    audit.record("push.device_added", by=request.user, obj=found, request=request,
                 device=values["name"])  # fmt: skip
    return JsonResponse({"id": found.pk, "name": values["name"]}, status=HTTPStatus.CREATED)


@require_POST
def device_stop(request, pk):
    device = get_object_or_404(PushSubscription, pk=pk, user=request.user)
    name = device.name
    audit.record("push.device_removed", by=request.user, obj=device, request=request, device=name)
    device.delete()
    messages.success(request, f"Alerts stopped on {name}.")
    return redirect("bulletins:devices")

"""The endpoint a device sends an acknowledgement made offline to (static/js/offline-ack.js
from the page, static/js/sw-ack.js from the service worker's Background Sync).

JSON (or a form) with `version`, `client_id` (a UUID made on the device), `device_time` (ISO
8601 with its offset) and `account` (the account key the device saved it under). CSRF applies:
the device keeps the page's token with what it saved. Answers JSON {status, message}: 201
recorded, 200 recorded before (the same answer again), 403 another account's, 404, 409 what
changed meanwhile, 422 bad input; each refusal's message is for the officer."""

import json
import uuid
from datetime import datetime
from http import HTTPStatus

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_POST

from bulletins.models import Bulletin
from bulletins.services import offline_ack
from portal.decorators import rate_limited
from portal.offline import account_key

NOT_FOUND = "This bulletin is not available to you."
OTHER_ACCOUNT = (
    "Saved on this device while someone else was signed in: it is sent when they sign in."
)
BAD_INPUT = "This saved acknowledgement is not complete. Open the order and acknowledge it again."


def _answer(status, message, http_status, **extra):
    return JsonResponse({"status": status, "message": message, **extra}, status=http_status)


def _fields(request):
    """(version, client_id, device_time, account) from JSON or a form; ValueError when bad."""
    if request.content_type == "application/json":
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    else:
        data = request.POST
    version = data.get("version")
    if isinstance(version, bool) or not 0 < int(version) < 2**31:
        raise ValueError("version")
    device_time = datetime.fromisoformat(str(data.get("device_time")))
    if device_time.tzinfo is None:
        raise ValueError("device_time without an offset")
    client_id = uuid.UUID(str(data.get("client_id")))
    return int(version), client_id, device_time, str(data.get("account") or "")


def _received(outcome):
    receipt = outcome.receipt
    on_device = receipt.acknowledged_on_device_at
    if on_device is None:
        return "You had already acknowledged this version."
    device, received = (timezone.localtime(at) for at in (on_device, receipt.acknowledged_at))
    return f"Acknowledged {device:%H:%M} on this device, received {received:%H:%M}."


@require_POST
@rate_limited("acknowledge", setting="ACKNOWLEDGE_RATE_PER_MINUTE")
def bulletin_acknowledge_offline(request, pk):
    try:
        version, client_id, device_time, account = _fields(request)
    except (ValueError, TypeError, json.JSONDecodeError):
        return _answer("invalid", BAD_INPUT, HTTPStatus.UNPROCESSABLE_ENTITY)
    if account and not constant_time_compare(account, account_key(request.user)):
        return _answer("other_account", OTHER_ACCOUNT, HTTPStatus.FORBIDDEN)
    try:
        outcome = offline_ack.acknowledge_offline(
            pk, user=request.user, version_number=version, client_id=client_id,
            device_at=device_time, now=timezone.now(), request=request,
        )  # fmt: skip
    except Bulletin.DoesNotExist:
        return _answer("not_found", NOT_FOUND, HTTPStatus.NOT_FOUND)
    except ValidationError as error:
        conflict = error.code in offline_ack.CONFLICTS
        status = HTTPStatus.CONFLICT if conflict else HTTPStatus.UNPROCESSABLE_ENTITY
        return _answer(error.code, " ".join(error.messages), status)
    receipt = outcome.receipt
    return _answer(
        "acknowledged",
        _received(outcome),
        HTTPStatus.CREATED if outcome.recorded else HTTPStatus.OK,
        version=receipt.version.number,
        acknowledged_on_device_at=_iso(receipt.acknowledged_on_device_at),
        received_at=_iso(receipt.acknowledged_at),
    )


def _iso(moment):
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else None

"""What the signed-in person's device keeps for reading offline: the bundle the worker asks for.

The feed and every bulletin in force for the person (the feed's own list), their attachments up to
`OFFLINE_ATTACHMENTS_MB` in all (most urgent bulletin first), and, listed apart, the Intelligence
bulletins the device must not keep unless `OFFLINE_RESTRICTED`. The etag changes whenever a kept
page would: the worker fetches the pages again only then (or after something the person posted).
"""

import hashlib

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bulletins.models import Attachment, Bulletin
from portal.offline import account_key, session_ends_at


def kept_bulletins(user, now):
    """In force for `user`, most urgent first, with what they have done (the feed's list)."""
    return list(
        Bulletin.objects.in_force(now)
        .addressed_to(user)
        .with_reader_state(user)
        .urgent_first()
        .only("id", "kind", "version", "expires_at", "last_reaffirmed_at", "status")
    )


def kept_attachments(bulletins, cap_bytes):
    """The attachments of `bulletins` that fit within `cap_bytes` together, most urgent first; one
    too large for what is left is skipped, a smaller one after it may still fit."""
    order = {bulletin.pk: index for index, bulletin in enumerate(bulletins)}
    rows = Attachment.objects.filter(bulletin__in=list(order)).only("id", "bulletin_id", "size")
    kept, total = [], 0
    for attachment in sorted(rows, key=lambda row: (order[row.bulletin_id], row.pk)):
        if total + attachment.size <= cap_bytes:
            kept.append(attachment)
            total += attachment.size
    return kept


def bundle(user, session, now):
    bulletins = kept_bulletins(user, now)
    restricted_kept = settings.OFFLINE_RESTRICTED
    readable = [b for b in bulletins if restricted_kept or not b.is_restricted]
    attachments = kept_attachments(readable, settings.OFFLINE_ATTACHMENTS_MB * 1024 * 1024)
    pages = [reverse("bulletins:feed")]
    pages += [reverse("bulletins:detail", args=[b.pk]) for b in readable]
    files = [reverse("bulletins:attachment", args=[a.bulletin_id, a.pk]) for a in attachments]
    state = [
        f"{b.pk}:{b.version}:{b.status}:{b.expires_at}:{b.last_reaffirmed_at}:"
        f"{b.my_opened_at is not None}:{b.my_ack_version}"
        for b in bulletins
    ]
    etag_source = "|".join([*state, *files, str(restricted_kept)])
    return {
        "account": account_key(user),
        "as_of": now.isoformat(),
        "expires_at": int(session_ends_at(session) * 1000),
        "zone": timezone.get_current_timezone_name(),
        "restricted_kept": restricted_kept,
        "pages": pages,
        "attachments": files,
        "restricted": [
            reverse("bulletins:detail", args=[b.pk])
            for b in bulletins
            if b.is_restricted and not restricted_kept
        ],
        "etag": hashlib.sha256(etag_source.encode()).hexdigest()[:20],
    }


@never_cache
@require_GET
def offline_bundle(request):
    """JSON for the worker; anonymous requests go to the sign-in page like every other."""
    return JsonResponse(bundle(request.user, request.session, timezone.now()))

"""Acknowledgements made on a device while offline, sent when it is back online (issue 22).

The device keeps what the officer did (bulletin, version, its own id, its own time) and sends
it later; the server decides whether it still applies, records both times (the device's, and
the arrival as `acknowledged_at`) and refuses, with a message for the officer and nothing
written, what no longer does. The client id makes a replay record nothing and answer the same.
"""

from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from bulletins.models import Bulletin, BulletinVersion, Receipt
from bulletins.services import reading

# How far ahead of the server a device's clock may run before its time is not believed.
CLOCK_SKEW = timedelta(minutes=2)

STALE = "This order changed while you were offline - read it again."
LIFTED = "This order was lifted while you were offline: there is nothing to acknowledge."
ENDED = "This order ended while you were offline: there is nothing to acknowledge."
NOT_IN_FORCE = "This order is not in force: there is nothing to acknowledge."
CHECK = "This order has a check of understanding. Answer the check when you are back online."
NOT_AN_ORDER = "Only Orders are acknowledged."
NO_SUCH_VERSION = "This order has no such version."
TOO_OLD = (
    "This acknowledgement was saved on the device more than {hours} hours ago and was not "
    "sent in time. Read the order and acknowledge it again."
)
AHEAD = (
    "The clock on this device is ahead of the portal's, so this acknowledgement cannot be "
    "recorded. Set the device's clock, then acknowledge again."
)
BEHIND = (
    "The clock on this device says it was acknowledged before this version was published. "
    "Set the device's clock, then acknowledge again."
)
ID_USED = "This acknowledgement's id was already used for another one. Acknowledge again."

# Refusal code -> whether it is about what changed on the server (409) or the input (422).
CONFLICTS = frozenset({"stale", "ended", "check"})


class Outcome(NamedTuple):
    recorded: bool  # False: recorded before (the same client id, or acknowledged already)
    receipt: Receipt


def acknowledge_offline(
    bulletin_id, *, user, version_number, client_id, device_at, now, request=None
):
    """Record that `user` acknowledged version `version_number` of `bulletin_id` on a device
    at `device_at` (aware), arriving `now`. Returns an Outcome.

    Raises Bulletin.DoesNotExist when it is not published or not addressed to `user`, and
    ValidationError (a code of CONFLICTS, or an input code) saying why it is refused."""
    bulletin = Bulletin.objects.published().filter(pk=bulletin_id).first()
    if bulletin is None or not bulletin.is_addressed_to(user):
        raise Bulletin.DoesNotExist
    sent_before = Receipt.objects.filter(client_id=client_id).first()
    if sent_before is not None:
        if sent_before.user_id != user.pk or sent_before.bulletin_id != bulletin.pk:
            raise ValidationError(ID_USED, code="client_id")
        return Outcome(False, sent_before)
    if device_at > now + CLOCK_SKEW:
        raise ValidationError(AHEAD, code="ahead")
    hours = settings.OFFLINE_ACK_MAX_HOURS
    if device_at < now - timedelta(hours=hours):
        raise ValidationError(TOO_OLD.format(hours=hours), code="too_old")
    acknowledged = _acknowledged(bulletin, user, version_number)
    if acknowledged is not None:
        return Outcome(False, acknowledged)
    _check_still_applies(bulletin, version_number, device_at, now)
    try:
        recorded = reading.acknowledge_offline_checked(
            bulletin, user=user, version_number=version_number, now=now, request=request,
            device_at=device_at, client_id=client_id,
        )  # fmt: skip
    except IntegrityError:  # the id is another receipt's (receipt_client_id_once)
        raise ValidationError(ID_USED, code="client_id") from None
    return Outcome(recorded, _acknowledged(bulletin, user, version_number))


def _acknowledged(bulletin, user, version_number):
    return (
        Receipt.objects.filter(
            bulletin=bulletin,
            user=user,
            version__number=version_number,
            acknowledged_at__isnull=False,
        )  # fmt: skip
        .select_related("version")
        .first()
    )


def _check_still_applies(bulletin, version_number, device_at, now):
    """What a normal acknowledgement checks, said for an officer who was offline meanwhile."""
    if not bulletin.requires_acknowledgement:
        raise ValidationError(NOT_AN_ORDER, code="not_order")
    version = (
        BulletinVersion.objects.filter(bulletin=bulletin, number=version_number)
        .only("created_at", "questions")
        .first()
    )
    if version is None:
        raise ValidationError(NO_SUCH_VERSION, code="version")
    state = bulletin.state_at(now)
    if state != Bulletin.Status.IN_FORCE:
        message = {Bulletin.Status.LIFTED: LIFTED, Bulletin.Status.EXPIRED: ENDED}
        raise ValidationError(message.get(state, NOT_IN_FORCE), code="ended")
    if version_number < bulletin.ack_version:
        raise ValidationError(STALE, code="stale")
    if version.questions:
        raise ValidationError(CHECK, code="check")
    if device_at < version.created_at - CLOCK_SKEW:
        raise ValidationError(BEHIND, code="behind")

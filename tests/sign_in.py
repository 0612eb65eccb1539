"""Signing in through the real forms, as the tests of the security controls do (rather than
with PortalClient.force_login)."""

import datetime as dt
import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.urls import reverse

from portal.models import AuditEvent
from tests.factories import PASSWORD

# Travel forward, never back: sessions made while travelling must still be valid after it.
START = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)


def totp_code(secret):
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client, email, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def actions():
    """The audit trail's actions so far, oldest first."""
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))

"""Signing in through the real forms, as the tests of the security controls do (rather than
with PortalClient.force_login)."""

import datetime as dt
import time

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.urls import reverse

from portal import mfa
from portal.middleware import MFA_ENROLLED
from portal.models import AuditEvent, User
from tests.factories import PASSWORD

# Travel forward, never back: sessions made while travelling must still be valid after it.
START = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)


def totp_code(secret):
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client, email, password=PASSWORD, *, accept_notice=True, waive_enrolment=True):
    """The sign-in form as a person fills it in: the system-use notice's box ticked. Someone who
    must have a second step and has none is let past enrolment for this session, as
    PortalClient stands for an enrolled person (tests of enrolment pass waive_enrolment=False)."""
    data = {"login": email, "password": password}
    if accept_notice:
        data["accept_notice"] = "on"
    response = client.post(reverse("account_login"), data)
    user = User.objects.filter(pk=signed_in_user_id(client)).first()
    if waive_enrolment and user and mfa.requires_mfa(user) and not mfa.is_enrolled(user):
        session = client.session
        session[MFA_ENROLLED] = user.pk
        session.save()
    return response


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def actions():
    """The audit trail's actions so far, oldest first."""
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))

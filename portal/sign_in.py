"""The sign-in form: allauth's, plus accepting the system-use notice (CJIS AC-8).

The box must be ticked for the password to be checked at all; the acceptance is written to the
audit trail with a hash of the notice's text, so which wording the person accepted can be shown.
"""

import hashlib

from allauth.account.forms import LoginForm
from django import forms
from django.conf import settings

from portal import audit

NOTICE_FIELD = "accept_notice"


def notice_sha256():
    return hashlib.sha256(settings.SYSTEM_USE_NOTICE.encode()).hexdigest()


class SignInForm(LoginForm):
    accept_notice = forms.BooleanField(
        label="I have read the system use notice above and accept it.",
        error_messages={"required": "Tick the box to accept the system use notice."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.SYSTEM_USE_NOTICE:
            del self.fields[NOTICE_FIELD]

    def login(self, request, redirect_url=None):
        """Right password (a second step may follow): record the acceptance, then sign in."""
        if NOTICE_FIELD in self.fields:
            audit.record(
                "auth.notice_accepted",
                by=self.user,
                obj=self.user,
                request=request,
                notice_sha256=notice_sha256(),
            )
        return super().login(request, redirect_url)

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.utils import timezone

from portal import audit, lockout
from portal.models import User


def typed_login(credentials):
    """The email as typed, for the audit trail; not when it looks like a mistyped password."""
    login = lockout.normalize(credentials.get("email") or credentials.get("username"))
    return login if "@" in login else "(not an email address)"


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are provisioned by roster import or by an admin: there is no public sign-up.

    Every password check (sign-in and re-authentication) goes through `authenticate()`: a
    locked login is refused before its password is looked at, and each failure is counted.
    """

    def is_open_for_signup(self, request):
        return False

    def pre_authenticate(self, request, **credentials):
        login = credentials.get("email") or credentials.get("username")
        if lockout.is_locked(login, now=timezone.now()):
            audit.record(
                "auth.sign_in_failed",
                obj=User.objects.filter(email=lockout.normalize(login)).first(),
                request=request,
                outcome="locked",
                login=typed_login(credentials),
                method="password",
            )
            raise forms.ValidationError(lockout.locked_message(), code="account_locked")
        super().pre_authenticate(request, **credentials)

    def authentication_failed(self, request, **credentials):
        login = credentials.get("email") or credentials.get("username")
        now = timezone.now()
        audit.record(
            "auth.sign_in_failed",
            obj=User.objects.filter(email=lockout.normalize(login)).first(),
            request=request,
            outcome="failure",
            now=now,
            login=typed_login(credentials),
            method="password",
        )
        lockout.register_failure(login, now=now, request=request)

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.contrib import messages
from django.shortcuts import redirect
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

    def get_client_ip(self, request):
        """The client as the audit trail sees it (TRUSTED_PROXY_COUNT): one rule for both, and a
        forwarded header shorter than the proxies are trusted for is not believed (allauth's own
        rule raises ImproperlyConfigured there: a 500 on a sign-in)."""
        return audit.client_ip(request) or super().get_client_ip(request)

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

    def pre_login(self, request, user, **kwargs):
        """A locked account is refused whichever way it signs in (a passkey skips the password)."""
        if lockout.is_locked(user.email, now=timezone.now()):
            audit.record(
                "auth.sign_in_failed",
                obj=user,
                request=request,
                outcome="locked",
                login=user.email,
                method="passkey",
            )
            for key in ("account_authentication_methods", "account_authentication_methods_user"):
                request.session.pop(key, None)
            self.add_message(request, messages.ERROR, message=lockout.locked_message())
            return redirect("account_login")
        return super().pre_login(request, user, **kwargs)

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

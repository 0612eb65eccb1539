"""Multi-factor authentication with allauth.mfa: who must have it, and secrets kept encrypted.

`MFA_REQUIRED_FOR` is "all" (the default: CJIS asks advanced authentication for all access),
"supervisors" (supervisors, admins, auditors and staff) or "none". An authenticator is a passkey
(WebAuthn: fingerprint, face or screen lock; it can also sign in on its own) or an authenticator
app (TOTP). allauth asks for the second step at every password sign-in once a person has one;
`portal.middleware.MFAEnrolmentMiddleware` sends those who must have one and do not to enrolment.
"""

import base64
import hashlib

from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base.forms import AuthenticateForm as AllauthAuthenticateForm
from allauth.mfa.base.forms import ReauthenticateForm as AllauthReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.forms import AddWebAuthnForm, LoginWebAuthnForm
from cryptography.fernet import Fernet, InvalidToken
from django import forms
from django.conf import settings
from django.utils import timezone

from portal import audit, lockout
from portal.models import User
from portal.sign_in import NOTICE_FIELD, notice_sha256

PRIVILEGED_ROLES = frozenset({User.Role.SUPERVISOR, User.Role.ADMIN, User.Role.AUDITOR})
ENCRYPTED_PREFIX = "fernet:"


def requires_mfa(user):
    policy = settings.MFA_REQUIRED_FOR
    if policy == "none":
        return False
    if policy == "all":
        return True
    return user.role in PRIVILEGED_ROLES or user.is_staff or user.is_superuser


SECOND_STEPS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def has_totp(user):
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def is_enrolled(user):
    """True when `user` has a passkey or an authenticator app (recovery codes alone are not)."""
    return Authenticator.objects.filter(user=user, type__in=SECOND_STEPS).exists()


def _fernet():
    digest = hashlib.sha256(settings.MFA_ENCRYPTION_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(text):
    return ENCRYPTED_PREFIX + _fernet().encrypt(text.encode()).decode()


def decrypt_secret(stored):
    if not stored.startswith(ENCRYPTED_PREFIX):
        return stored  # written before encryption was turned on
    try:
        return _fernet().decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode()).decode()
    except InvalidToken as error:
        message = "an MFA secret cannot be decrypted: was MFA_ENCRYPTION_KEY changed?"
        raise ValueError(message) from error


def enrol_totp(user, secret):
    """Give `user` an authenticator app with `secret` (base32), replacing any they had."""
    Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).delete()
    return Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": encrypt_secret(secret)}
    )


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text):
        return encrypt_secret(text)

    def decrypt(self, encrypted_text):
        return decrypt_secret(encrypted_text)

    def can_delete_authenticator(self, authenticator):
        """Those who must have MFA cannot turn it off themselves (an admin can reset it)."""
        return not requires_mfa(authenticator.user)

    def get_public_key_credential_rp_entity(self):
        return {**super().get_public_key_credential_rp_entity(), "name": settings.PORTAL_NAME}

    def generate_authenticator_name(self, user, type):
        count = Authenticator.objects.filter(user=user, type=type).count()
        return "Passkey" if count == 0 else f"Passkey {count + 1}"


class LockoutCheckMixin:
    """A locked account gets no more code checks, right or wrong."""

    def clean_code(self):
        if lockout.is_locked(self.user.email, now=timezone.now()):
            raise forms.ValidationError(lockout.locked_message())
        return super().clean_code()


class AuthenticateForm(LockoutCheckMixin, AllauthAuthenticateForm):
    pass


class ReauthenticateForm(LockoutCheckMixin, AllauthReauthenticateForm):
    pass


class AddPasskeyForm(AddWebAuthnForm):
    """allauth's form in plain words; the passkey signs in on its own unless the box is unticked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].label = "Name"
        self.fields["name"].help_text = "So you can tell your passkeys apart, e.g. My phone."
        passwordless = self.fields.get("passwordless")
        if passwordless:
            passwordless.label = "Also sign in with it, without my password"
            passwordless.help_text = (
                "Your phone checks your fingerprint, face or screen lock first."
            )
            passwordless.initial = True


class PasskeySignInForm(LoginWebAuthnForm):
    """A passkey skips the password form, not the system-use notice: its own box is ticked too,
    and the acceptance is audited as the password form's is."""

    accept_notice = forms.BooleanField(required=False)

    def clean(self):
        cleaned_data = super().clean()
        authenticator = cleaned_data.get("credential")
        if not settings.SYSTEM_USE_NOTICE or not authenticator:
            return cleaned_data
        if not cleaned_data.get(NOTICE_FIELD):
            # allauth's view shows the credential's errors only.
            self.add_error("credential", "Tick the box to accept the system use notice.")
            return cleaned_data
        user = authenticator.user
        audit.record(
            "auth.notice_accepted",
            by=user,
            obj=user,
            request=context.request,
            notice_sha256=notice_sha256(),
        )
        return cleaned_data

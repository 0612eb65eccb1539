"""Multi-factor authentication with allauth.mfa: who must have it, and secrets kept encrypted.

`MFA_REQUIRED_FOR` is "supervisors" (supervisors, admins, auditors and staff: the default),
"all" or "none". allauth asks for the code at every sign-in once a person has an authenticator;
`portal.middleware.MFAEnrolmentMiddleware` sends those who must have one and do not to enrolment.
"""

import base64
import hashlib

from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base.forms import AuthenticateForm as AllauthAuthenticateForm
from allauth.mfa.base.forms import ReauthenticateForm as AllauthReauthenticateForm
from allauth.mfa.models import Authenticator
from cryptography.fernet import Fernet, InvalidToken
from django import forms
from django.conf import settings
from django.utils import timezone

from portal import lockout
from portal.models import User

PRIVILEGED_ROLES = frozenset({User.Role.SUPERVISOR, User.Role.ADMIN, User.Role.AUDITOR})
ENCRYPTED_PREFIX = "fernet:"


def requires_mfa(user):
    policy = settings.MFA_REQUIRED_FOR
    if policy == "none":
        return False
    if policy == "all":
        return True
    return user.role in PRIVILEGED_ROLES or user.is_staff or user.is_superuser


def has_totp(user):
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


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

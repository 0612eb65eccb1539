"""Links that set a password: a reset the person asked for lasts `PASSWORD_RESET_TIMEOUT` (an
hour), an invitation an admin or the roster import sent lasts `INVITATION_TIMEOUT` (a day).

Both go to allauth's one reset page, which checks every key with `ResetLinkTokens` (the
`ACCOUNT_PASSWORD_RESET_TOKEN_GENERATOR`). An invitation is signed with a salt of its own, so a
reset key is never accepted for a day, nor an invitation's key forged from a reset's. Either
stops working once used (the password and last sign-in are in the signed value).
"""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int


class _ExpiringTokens(PasswordResetTokenGenerator):
    """Django's keys, with allauth's addition: a key dies when the person's addresses change.
    (Not a subclass of allauth's generator: its module imports this one, by the setting.)"""

    timeout_setting = "PASSWORD_RESET_TIMEOUT"

    def _make_hash_value(self, user, timestamp):
        emails = set(EmailAddress.objects.filter(user_id=user.pk).values_list("email", flat=True))
        emails.update([user.email] if user.email else [])
        return super()._make_hash_value(user, timestamp) + "|".join(sorted(emails))

    def check_token(self, user, token):
        """Django's check, with this kind's own lifetime."""
        if not (user and token):
            return False
        try:
            made_at = base36_to_int(token.split("-")[0])
        except ValueError:
            return False
        if self._num_seconds(self._now()) - made_at > getattr(settings, self.timeout_setting):
            return False
        return any(
            constant_time_compare(self._make_token_with_timestamp(user, made_at, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        )


class InvitationTokens(_ExpiringTokens):
    key_salt = "portal.password_links.InvitationTokens"
    timeout_setting = "INVITATION_TIMEOUT"


invitation_tokens = InvitationTokens()


class ResetLinkTokens(_ExpiringTokens):
    """Makes reset keys; accepts reset keys and invitation keys, each for its own lifetime."""

    key_salt = "portal.password_links.ResetLinkTokens"

    def check_token(self, user, token):
        return super().check_token(user, token) or invitation_tokens.check_token(user, token)

from django.core.exceptions import ValidationError
from django.utils.translation import ngettext


class MaximumLengthValidator:
    """Refuses passwords longer than `max_length` (hashing very long input is a DoS vector)."""

    def __init__(self, max_length=128):
        self.max_length = max_length

    def validate(self, password, user=None):
        if len(password) > self.max_length:
            raise ValidationError(
                ngettext(
                    "This password is too long. It must contain at most %(max)d character.",
                    "This password is too long. It must contain at most %(max)d characters.",
                    self.max_length,
                ),
                code="password_too_long",
                params={"max": self.max_length},
            )

    def get_help_text(self):
        return f"Your password must contain at most {self.max_length} characters."

import re

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


# Invisible characters no one types on purpose; XML 1.0 (CAP, Atom) cannot carry most of them:
# the C0 controls, DEL, the C1 controls, lone surrogates and the non-characters U+FFFE/U+FFFF.
_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Text over several lines also keeps tab, line feed and carriage return (browsers send a
# textarea's line breaks as CR LF).
_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
CONTROL_CHARACTER_MESSAGE = (
    "This text holds an invisible control character (pasted text often brings one): remove it."
)


def control_character_in(text, *, multi_line=False):
    """The first control character of `text` that the field may not hold, or None."""
    found = (_MULTI_LINE if multi_line else _ONE_LINE).search(text or "")
    return found[0] if found else None


def refuse_control_characters(text):
    """A validator for one-line text: a name, a title, a badge."""
    if control_character_in(text) is not None:
        raise ValidationError(CONTROL_CHARACTER_MESSAGE, code="control_character")


def refuse_control_characters_but_line_breaks(text):
    """A validator for text over several lines: a body, a reason (tab and line breaks kept)."""
    if control_character_in(text, multi_line=True) is not None:
        raise ValidationError(CONTROL_CHARACTER_MESSAGE, code="control_character")

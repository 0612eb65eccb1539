"""What an amendment may change without everyone acknowledging again (a correction).

A correction may move the end time, change the review interval, and fix the spelling of the
title, instructions and body: at most three words in all, each a close respelling of the word it
replaces, none inserted or removed, and none of them (before or after) a number, a number word,
a negation or a cancelling word. Punctuation, spacing and capitals are not counted as words.
Anything else changes what officers must do and is published as a material change.
"""

import difflib
import re

from django.core.exceptions import ValidationError

MATERIAL_MESSAGE = (
    "This changes what officers must do: publish it as a change that needs acknowledging"
)
NOTHING_CHANGED_MESSAGE = (
    "Nothing has changed: edit the text or the end time, or cancel the amendment."
)
HELP_TEXT = (
    "A correction (acknowledgements carry over) may only change the end time or fix spelling: "
    "at most 3 words, each a small respelling of the word it replaces, no word added or taken "
    "out, and no number, no, not, never, cancel, lift or suspend among them. Anything else is a "
    "change officers must acknowledge again."
)

# What the reader signs and answers: a change to any of it is never a correction.
RESPONSE_FIELDS = ("statement", "implemented_from", "implemented_prompt", "questions")
RESPONSE_MESSAGE = (
    "A new statement, report or check of understanding changes what officers sign and answer: "
    "publish it as a change that needs acknowledging"
)
MAX_CHANGED_WORDS = 3
TEXT_FIELDS = ("title", "instruction", "body")
CORRECTABLE_FIELDS = (*TEXT_FIELDS, "expires_at", "review_interval")

_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_ROMAN_NUMERAL = re.compile(r"^(?=[MDCLXVI])M*(C[MD]|D?C*)(X[CL]|L?X*)(I[XV]|V?I*)$")
NUMBER_WORDS = frozenset((
    "zero", "nil", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
    "ninety", "hundred", "thousand", "million", "billion", "dozen", "half", "quarter", "once",
    "twice", "thrice", "single", "double", "triple", "both", "first", "second", "third",
    "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth",
    "twentieth", "hundredth", "thousandth", "last",
))  # fmt: skip
NEGATION_WORDS = frozenset((
    "no", "not", "never", "none", "nothing", "nobody", "nowhere", "nor", "neither", "without",
    "cannot", "unless", "except", "instead", "off",
))  # fmt: skip
CANCEL_WORDS = frozenset((
    "end", "ends", "ended", "ending", "over", "void", "voided", "stop", "stops", "stopped",
    "stopping", "remove", "removed", "delete", "deleted",
))  # fmt: skip
CANCEL_STEMS = (
    "cancel", "lift", "suspend", "revok", "revoc", "rescind", "withdr", "annul", "abort",
    "halt", "terminat", "postpon", "ceas", "disregard", "ignor", "expir", "reinstat", "resum",
)  # fmt: skip


def words(text):
    return _WORD.findall(text or "")


def is_meaningful(word):
    """A number, a number word, a negation or a cancelling word (or one built from them)."""
    if any(char.isdigit() for char in word) or _ROMAN_NUMERAL.match(word):
        return True
    for part in re.split(r"['’-]", word.lower()):
        if part in NUMBER_WORDS or part in NEGATION_WORDS or part in CANCEL_WORDS:
            return True
        if part == "t" or part.startswith(CANCEL_STEMS):  # "t": don't, can't, won't
            return True
    return False


def _edit_distance(a, b):
    """Levenshtein distance counting a swap of two neighbouring letters as one edit."""
    previous_row, row = None, list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        before, previous_row, row = previous_row, row, [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            row[j] = min(
                previous_row[j] + 1,
                row[j - 1] + 1,
                previous_row[j - 1] + (char_a != char_b),
            )
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[-1]


def is_respelling(old, new):
    """A close respelling: one edit (two in a word of eight letters or more), mostly the same
    letters, and neither word a number, a negation or a cancelling word."""
    old_lower, new_lower = old.lower(), new.lower()
    allowed = 2 if max(len(old), len(new)) >= 8 else 1
    return (
        _edit_distance(old_lower, new_lower) <= allowed
        and difflib.SequenceMatcher(a=old_lower, b=new_lower).ratio() >= 0.6
        and not is_meaningful(old)
        and not is_meaningful(new)
    )


def changed_words(old, new):
    """[(old word, new word)] replaced between two texts, or None when a word was added or
    taken out. Capitals, punctuation and spacing are not counted."""
    old_words, new_words = words(old), words(new)
    matcher = difflib.SequenceMatcher(
        a=[w.lower() for w in old_words], b=[w.lower() for w in new_words], autojunk=False
    )
    pairs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag != "replace" or i2 - i1 != j2 - j1:
            return None
        pairs.extend(zip(old_words[i1:i2], new_words[j1:j2], strict=True))
    return pairs


def is_correction(old_texts, new_texts):
    """Whether the new texts only fix the spelling of the old ones (see the module's rule)."""
    pairs = []
    for old, new in zip(old_texts, new_texts, strict=True):
        changed = changed_words(old, new)
        if changed is None:
            return False
        pairs.extend(changed)
    return len(pairs) <= MAX_CHANGED_WORDS and all(is_respelling(a, b) for a, b in pairs)


def _comparable(value):
    """Text as it reads: line endings and spaces at the ends of lines do not count."""
    if isinstance(value, str):
        return "\n".join(line.rstrip() for line in value.replace("\r\n", "\n").split("\n")).strip()
    return value


def changed_fields(bulletin, fields):
    """The names of the fields whose new value differs from the bulletin's."""
    return [
        name
        for name, value in fields.items()
        if _comparable(getattr(bulletin, name)) != _comparable(value)
    ]


def check_amendment(bulletin, fields, *, is_material):
    """Refuse an amendment that changes nothing, or a correction that changes what officers
    must do. Returns the names of the fields that change."""
    changed = changed_fields(bulletin, fields)
    if not changed:
        raise ValidationError(NOTHING_CHANGED_MESSAGE, code="unchanged")
    if is_material:
        return changed
    if any(name in RESPONSE_FIELDS for name in changed):
        raise ValidationError({"is_material": RESPONSE_MESSAGE}, code="material")
    texts = [name for name in TEXT_FIELDS if name in changed]
    if any(name not in CORRECTABLE_FIELDS for name in changed) or not is_correction(
        [getattr(bulletin, name) for name in texts], [fields[name] for name in texts]
    ):
        raise ValidationError({"is_material": MATERIAL_MESSAGE}, code="material")
    return changed

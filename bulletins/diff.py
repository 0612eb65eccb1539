"""What changed between two versions, as runs of kept, removed and added words."""

import difflib
import re

from django.utils import dateformat, timezone

from bulletins.models import Bulletin

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(old, new):
    """[(op, text)] with op "same", "removed" or "added"."""
    old_words, new_words = _TOKENS.findall(old or ""), _TOKENS.findall(new or "")
    runs = []
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(("same", "".join(old_words[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("removed", "".join(old_words[i1:i2])))
        if j2 > j1:
            runs.append(("added", "".join(new_words[j1:j2])))
    return runs


def _end(version):
    if version.expires_at is None:
        return "until further notice"
    return dateformat.format(timezone.localtime(version.expires_at), "D d M Y H:i")


def version_changes(old, new):
    """Field-by-field word diffs of the fields that changed between two versions."""
    labels = {"title": "Title", "instruction": "Instructions", "body": "Body"}
    changes = [
        {"label": label, "runs": word_diff(getattr(old, name), getattr(new, name))}
        for name, label in labels.items()
        if getattr(old, name) != getattr(new, name)
    ]
    if old.priority != new.priority:
        priorities = dict(Bulletin.Priority.choices)
        runs = [
            ("removed", priorities[old.priority]),
            ("same", " "),
            ("added", priorities[new.priority]),
        ]
        changes.append({"label": "Priority", "runs": runs})
    if old.expires_at != new.expires_at:
        runs = [("removed", _end(old)), ("same", " "), ("added", _end(new))]
        changes.append({"label": "Ends", "runs": runs})
    return changes


def version_history(versions):
    """[{"version", "changes"}] for a bulletin's versions in order, each with what changed since
    the one before (nothing for the first). Reads no rows."""
    return [
        {"version": new, "changes": version_changes(old, new) if old else []}
        for old, new in zip([None, *versions], versions, strict=False)
    ]

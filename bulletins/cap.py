"""CAP 1.2 (OASIS Common Alerting Protocol) documents for published bulletins.

Each published version is one message: version 1 an Alert, later versions an Update that
references every earlier version. A lift is one more message, a Cancel referencing the whole
thread. Documents are built only from immutable rows (the version, the audience frozen at
publication), so a document never changes once its version exists.

Choices (see the issue "Interoperability"):
- identifier `<host>-bulletin-<id>-v<n>` (`-cancel` for the lift); sender `bulletins@<host>`,
  host from SITE_URL, so (sender, identifier) is unique across agencies on one deployment;
- scope is always Restricted, with a restriction text: every bulletin is limited to its audience
  and we publish no list of personal addresses (which Private would need);
- times in the agency's time zone with an explicit offset and whole seconds (the strict schema);
- an alert that supersedes others references each superseded bulletin's last alert (their
  Cancel follows from their being lifted);
- status Exercise when the bulletin says so (`is_exercise`), else Actual; an exercise's
  headline also starts "EXERCISE - " for people who read only the text.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from bulletins.markup import plain_text
from bulletins.models import Bulletin, BulletinVersion
from portal.models import User

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CONTENT_TYPE = "application/cap+xml"

RESPONSE_TYPES = {
    Bulletin.Kind.ORDER: "Execute",
    Bulletin.Kind.ADVISORY: "Monitor",
    Bulletin.Kind.INTELLIGENCE: "Monitor",
    Bulletin.Kind.INFORMATION: "None",
}
RESTRICTED = "Restricted - do not forward. For the named audience only."
AUDIENCE_ONLY = "For members of the addressed units only. Do not forward outside the agency."
LIFTED_INSTRUCTION = "This bulletin has been lifted: its instructions no longer apply."
# What XML 1.0 cannot carry (its `Char` production): most C0 controls, lone surrogates, U+FFFE/F.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def host():
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def sender():
    return f"bulletins@{host()}"


def identifier(bulletin_id, number):
    return f"{host()}-bulletin-{bulletin_id}-v{number}"


def cancel_identifier(bulletin_id):
    return f"{host()}-bulletin-{bulletin_id}-cancel"


def xml_text(text):
    """`text` as XML can carry it: a character it cannot is a space. The forms refuse them, but
    one stored by other means must not break the feed for the whole audience."""
    return NOT_XML.sub(" ", text) if text else text


def cap_time(moment):
    """`YYYY-MM-DDThh:mm:ss+hh:mm`: the strict schema wants an offset and no fractions."""
    return timezone.localtime(moment).replace(microsecond=0).isoformat()


def absolute(path):
    return settings.SITE_URL.rstrip("/") + path


def alert_url(bulletin_id, number):
    return reverse("bulletins:cap_alert", kwargs={"pk": bulletin_id, "number": number})


def cancel_url(bulletin_id):
    return reverse("bulletins:cap_cancel", kwargs={"pk": bulletin_id})


def lifted_at(bulletin):
    """When a lifted bulletin stopped being in force (a scheduled lift ends at `expires_at`)."""
    return bulletin.ended_at or bulletin.expires_at


def alert_document(bulletin, version, versions, audience):
    """The Alert or Update message of `version`. `versions` are the bulletin's versions, in
    order; `audience` its AudienceUnit rows."""
    earlier = [v for v in versions if v.number < version.number]
    alert = _alert(
        bulletin,
        identifier=identifier(bulletin.pk, version.number),
        sent=version.created_at,
        msg_type="Update" if earlier else "Alert",
        note=_amendment_note(version) if earlier else "",
        references=superseded_versions(bulletin, version) + earlier,
    )
    _info(
        alert,
        bulletin,
        version,
        audience,
        response_type=RESPONSE_TYPES[version.kind],
        effective=max(version.effective_at, version.created_at),
        expires=version.expires_at,
        description=plain_text(version.body),
        instruction=version.instruction,
    )
    return _serialize(alert)


def cancel_document(bulletin, versions, audience):
    """The Cancel message of a lifted bulletin: AllClear, referencing every version."""
    ended_at = lifted_at(bulletin)
    reason = bulletin.lift_reason.strip()
    alert = _alert(
        bulletin,
        identifier=cancel_identifier(bulletin.pk),
        sent=ended_at,
        msg_type="Cancel",
        note=f"Lifted: {reason}" if reason else "Lifted.",
        references=versions,
    )
    lifted_by = bulletin.lifted_by.name if bulletin.lifted_by_id else "the issuer"
    description = f"Lifted by {lifted_by}." + (f" Reason: {reason}" if reason else "")
    _info(
        alert,
        bulletin,
        versions[-1],
        audience,
        response_type="AllClear",
        effective=ended_at,
        expires=None,
        description=description,
        instruction=LIFTED_INSTRUCTION,
    )
    return _serialize(alert)


def superseded_versions(bulletin, version):
    """The alert of each bulletin `bulletin` supersedes: its last version sent by the time
    `version` was (so the document never changes once made)."""
    rows = BulletinVersion.objects.filter(
        bulletin__superseded_by=bulletin.pk, created_at__lte=version.created_at
    ).order_by("bulletin_id", "number")
    return list({row.bulletin_id: row for row in rows}.values())


def _amendment_note(version):
    again = " Acknowledge again." if version.is_material else ""
    return f"Amended (version {version.number}): {version.reason}.{again}"


def _reference(version):
    parts = [
        sender(),
        identifier(version.bulletin_id, version.number),
        cap_time(version.created_at),
    ]
    return ",".join(parts)


def _sub(parent, name, text):
    element = etree.SubElement(parent, f"{{{NAMESPACE}}}{name}")
    element.text = xml_text(text)
    return element


def exercise_prefix(bulletin):
    """What starts an exercise's headline or feed entry title."""
    return "EXERCISE - " if bulletin.is_exercise else ""


def _alert(bulletin, *, identifier, sent, msg_type, note, references):
    alert = etree.Element(f"{{{NAMESPACE}}}alert", nsmap={None: NAMESPACE})
    _sub(alert, "identifier", identifier)
    _sub(alert, "sender", sender())
    _sub(alert, "sent", cap_time(sent))
    _sub(alert, "status", "Exercise" if bulletin.is_exercise else "Actual")
    _sub(alert, "msgType", msg_type)
    _sub(alert, "scope", "Restricted")
    _sub(alert, "restriction", RESTRICTED if bulletin.is_restricted else AUDIENCE_ONLY)
    if note:
        _sub(alert, "note", note)
    if references:
        _sub(alert, "references", " ".join(_reference(v) for v in references))
    _sub(alert, "incidents", f"{host()}-bulletin-{bulletin.pk}")
    return alert


def _audience_text(bulletin):
    classes = [User.MemberClass(value).label for value in bulletin.member_classes]
    text = ", ".join(classes) + " members"
    return text + (", supervisors only" if bulletin.supervisors_only else "")


def _info(alert, bulletin, version, audience, *, response_type, effective, expires, **text):
    urgency, severity, certainty = Bulletin.CAP_LEVELS[version.priority]
    info = _sub(alert, "info", None)
    _sub(info, "language", "en-US")
    _sub(info, "category", "Security")
    _sub(info, "event", f"Officer safety {Bulletin.Kind(version.kind).label.lower()}")
    _sub(info, "responseType", response_type)
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty)
    _sub(info, "audience", _audience_text(bulletin))
    _sub(info, "effective", cap_time(effective))
    if expires is not None:
        _sub(info, "expires", cap_time(expires))
    _sub(info, "senderName", bulletin.agency.name)
    _sub(info, "headline", exercise_prefix(bulletin) + version.title)
    if text["description"]:
        _sub(info, "description", text["description"])
    _sub(info, "instruction", text["instruction"])
    _sub(info, "web", absolute(reverse("bulletins:detail", kwargs={"pk": bulletin.pk})))
    parameter = _sub(info, "parameter", None)
    _sub(parameter, "valueName", "acknowledgementRequired")
    _sub(parameter, "value", "true" if version.kind == Bulletin.Kind.ORDER else "false")
    area = _sub(info, "area", None)
    _sub(area, "areaDesc", "; ".join(str(row) for row in audience))
    return info


def _serialize(alert):
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)

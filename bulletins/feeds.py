"""CAP documents and Atom feeds of CAP alerts, for a signed-in person or an API token.

Access follows the pages: a bulletin outside your audience is a 404. The feeds follow the OASIS
"CAP feeds" practice: one Atom entry per alert in force, linking its CAP document.
"""

from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from lxml import etree

from bulletins import cap, permissions
from bulletins.api.auth import session_or_token
from bulletins.models import AudienceUnit, Bulletin, BulletinVersion
from bulletins.services import reading
from portal.models import Unit
from portal.scope import is_in_scope

ATOM = "http://www.w3.org/2005/Atom"
ATOM_CONTENT_TYPE = "application/atom+xml"


def _published_or_404(user, pk):
    queryset = permissions.visible_bulletins(user).published().select_related("agency", "lifted_by")
    return get_object_or_404(queryset, pk=pk)


def _xml_response(content, content_type):
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@session_or_token
def cap_alert(request, pk, number):
    bulletin = _published_or_404(request.user, pk)
    versions = list(bulletin.versions.filter(number__lte=number))
    if not versions or versions[-1].number != number:
        raise Http404
    reading.record_restricted_view(
        bulletin, user=request.user, request=request, version=number, via="cap"
    )
    audience = list(bulletin.audience.select_related("unit"))
    return _xml_response(
        cap.alert_document(bulletin, versions[-1], versions, audience), cap.CONTENT_TYPE
    )


@require_GET
@session_or_token
def cap_cancel(request, pk):
    bulletin = _published_or_404(request.user, pk)
    if bulletin.state_at(timezone.now()) != Bulletin.Status.LIFTED:
        raise Http404
    reading.record_restricted_view(
        bulletin, user=request.user, request=request, version=bulletin.version, via="cap"
    )
    versions = list(bulletin.versions.all())
    audience = list(bulletin.audience.select_related("unit"))
    return _xml_response(cap.cancel_document(bulletin, versions, audience), cap.CONTENT_TYPE)


def addressed_to_unit(bulletins, unit):
    """Bulletins whose audience names `unit`, or one of its ancestors with the units below."""
    steplen = Unit.steplen
    ancestors = [unit.path[:end] for end in range(steplen, len(unit.path) + 1, steplen)]
    reaching = AudienceUnit.objects.filter(bulletin=OuterRef("pk")).filter(
        Q(include_subtree=True, unit__path__in=ancestors) | Q(unit=unit)
    )
    return bulletins.filter(Exists(reaching))


def may_follow_unit(user, unit):
    """A unit's feed is for the people over it (scope) and the people in or under it."""
    own_chain = user.unit_id is not None and user.unit.path.startswith(unit.path)
    return own_chain or is_in_scope(user, unit)


def _in_force(bulletins, now):
    current = BulletinVersion.objects.filter(bulletin=OuterRef("pk"), number=OuterRef("version"))
    return list(
        bulletins.in_force(now)
        .annotate(version_sent_at=Subquery(current.values("created_at")[:1]))
        .select_related("agency")
        .urgent_first()[:200]
    )


@never_cache
@require_GET
@session_or_token
def cap_feed(request):
    """The CAP alerts in force for the caller."""
    now = timezone.now()
    bulletins = _in_force(Bulletin.objects.addressed_to(request.user), now)
    _record_restricted_views(request, bulletins, now)
    title = f"In force for {request.user.name}"
    return _xml_response(_atom(request, title, bulletins, now), ATOM_CONTENT_TYPE)


@never_cache
@require_GET
@session_or_token
def unit_cap_feed(request, unit_pk):
    """The CAP alerts in force addressed to a unit, as far as the caller may see them."""
    unit = get_object_or_404(Unit, pk=unit_pk)
    if not may_follow_unit(request.user, unit):
        raise Http404
    now = timezone.now()
    visible = addressed_to_unit(permissions.visible_bulletins(request.user), unit)
    bulletins = _in_force(visible, now)
    _record_restricted_views(request, bulletins, now)
    return _xml_response(
        _atom(request, f"In force for {unit.name}", bulletins, now), ATOM_CONTENT_TYPE
    )


def _record_restricted_views(request, bulletins, now):
    """An entry shows a restricted bulletin's title and instructions: audited as a page view."""
    for bulletin in bulletins:
        reading.record_restricted_view(
            bulletin, user=request.user, request=request, version=bulletin.version, now=now,
            via="atom",
        )  # fmt: skip


def _sub(parent, name, text=None, **attributes):
    attributes = {key: cap.xml_text(value) for key, value in attributes.items()}
    element = etree.SubElement(parent, f"{{{ATOM}}}{name}", attributes)
    element.text = cap.xml_text(text)
    return element


def _atom(request, title, bulletins, now):
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    self_url = cap.absolute(request.path)
    _sub(feed, "id", self_url)
    _sub(feed, "title", title)
    updated = max((b.version_sent_at for b in bulletins), default=now)
    _sub(feed, "updated", cap.cap_time(updated))
    _sub(feed, "link", rel="self", href=self_url, type=ATOM_CONTENT_TYPE)
    _sub(_sub(feed, "author"), "name", cap.sender())
    for bulletin in bulletins:
        _entry(feed, bulletin)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _entry(feed, bulletin):
    document = cap.absolute(cap.alert_url(bulletin.pk, bulletin.version))
    page = cap.absolute(reverse("bulletins:detail", kwargs={"pk": bulletin.pk}))
    entry = _sub(feed, "entry")
    _sub(entry, "id", document)
    _sub(entry, "title", cap.exercise_prefix(bulletin) + bulletin.title)
    _sub(entry, "updated", cap.cap_time(bulletin.version_sent_at))
    _sub(_sub(entry, "author"), "name", bulletin.agency.name)
    _sub(entry, "summary", bulletin.instruction)
    _sub(entry, "link", rel="alternate", type=cap.CONTENT_TYPE, href=document)
    _sub(entry, "link", rel="related", type="text/html", href=page)

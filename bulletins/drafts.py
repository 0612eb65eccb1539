"""Drafts and scheduled: where an author finds again the drafts they may manage and the bulletins
published to take effect later. Drafts are kept (they are in the audit trail): nothing here
deletes one."""

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import CharField, DateTimeField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Cast, Coalesce
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bulletins import permissions
from bulletins.models import AudienceUnit, Bulletin
from portal.local_time import zone_name
from portal.models import AuditEvent, User

PAGE_SIZE = 25
# The audit events that save a draft: its last one is when the draft was last saved.
SAVING_ACTIONS = ("bulletin.create", "bulletin.update_draft", "attachment.add")
CARD_FIELDS = (
    "id", "kind", "priority", "status", "title", "effective_at", "expires_at", "created_at",
    "to_sworn", "to_auxiliary", "to_civilian", "supervisors_only", "issued_by__name",
    "approval",
)  # fmt: skip


@never_cache
@permission_required(permissions.AUTHOR, raise_exception=True)
@require_GET
def drafts(request):
    now = timezone.now()
    managed = permissions.manageable_bulletins(request.user)
    draft_page = _page(_drafts(managed), request.GET.get("page"))
    scheduled_page = _page(_scheduled(managed, now), request.GET.get("scheduled"))
    context = {
        "drafts": draft_page,
        "scheduled": scheduled_page,
        "zone": zone_name(),
    }
    return render(request, "bulletins/drafts.html", context)


def _drafts(managed):
    saves = AuditEvent.objects.filter(
        object_type=Bulletin._meta.label_lower,
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
        action__in=SAVING_ACTIONS,
    )
    last_saved = saves.order_by("-at").values("at")[:1]
    return (
        _cards(managed.filter(status=Bulletin.Status.DRAFT))
        .annotate(
            last_saved_at=Coalesce(Subquery(last_saved, output_field=DateTimeField()), "created_at")
        )
        .order_by("-last_saved_at", "-id")
    )


def _scheduled(managed, now):
    """Published and taking effect later: the clock decides, not the recorded status."""
    scheduled = managed.filter(status__in=Bulletin.LIVE_STATUSES, effective_at__gt=now)
    return _cards(scheduled).order_by("effective_at", "id")


def _cards(bulletins):
    audience = AudienceUnit.objects.select_related("unit").order_by("unit__path")
    return (
        bulletins.select_related("issued_by")
        .prefetch_related(Prefetch("audience", queryset=audience))
        .only(*CARD_FIELDS)
    )


def _page(bulletins, number):
    page = Paginator(bulletins, PAGE_SIZE).get_page(number)
    for bulletin in page:
        bulletin.audience_words = audience_words(bulletin)
    return page


def audience_words(bulletin):
    """ "17th Precinct (and below); sworn and auxiliary members, supervisors only"."""
    units = "; ".join(str(row) for row in bulletin.audience.all()) or "No units"
    classes = bulletin.member_classes
    if len(classes) == len(User.MemberClass.values):
        who = "everyone"
    else:
        labels = [User.MemberClass(value).label.lower() for value in classes]
        who = " and ".join(labels) + " members" if labels else "no one"
    if bulletin.supervisors_only:
        who += ", supervisors only"
    return f"{units}: {who}"

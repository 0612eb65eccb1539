"""While you were away (issue 23): what changed, among the bulletins a person may see, since
they were last seen: published, amended (a material amendment: a correction is not news),
lifted or ended. Shown once, on the first feed page of someone coming back
(`portal.last_seen`), most urgent first."""

from django.db.models import Exists, OuterRef, Q
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bulletins import permissions
from bulletins.models import Bulletin, BulletinVersion
from portal import last_seen
from portal.local_time import zone_name

MAX_SHOWN = 50


def _between(field, since, now):
    return Q(**{f"{field}__gt": since, f"{field}__lte": now})


def changes_since(user, since, now):
    """The bulletins visible to `user` that changed in (since, now], most urgent first, each
    with `changes`: the words for what happened ("Published", "Amended", "Lifted", "Ended")."""
    amended = BulletinVersion.objects.filter(
        _between("created_at", since, now), bulletin=OuterRef("pk"), number__gt=1, is_material=True
    )
    published = _between("effective_at", since, now)
    lifted = Q(status=Bulletin.Status.LIFTED) & _between("ended_at", since, now)
    ended = ~Q(status=Bulletin.Status.LIFTED) & _between("expires_at", since, now)
    found = (
        permissions.visible_bulletins(user)
        .exclude(status=Bulletin.Status.DRAFT)
        .alias(was_amended=Exists(amended))
        .filter(published | lifted | ended | Q(was_amended=True))
        .annotate(
            is_published=published, is_amended=Exists(amended), is_lifted=lifted, is_ended=ended
        )  # fmt: skip
        .urgent_first()[:MAX_SHOWN]
    )
    bulletins = list(found)
    for bulletin in bulletins:
        bulletin.changes = [
            word
            for word, happened in (
                ("Published", bulletin.is_published),
                ("Amended", bulletin.is_amended),
                ("Lifted", bulletin.is_lifted),
                ("Ended", bulletin.is_ended),
            )
            if happened
        ]
    return bulletins


def should_show(request):
    """Whether the feed page opened now should first show what changed (someone coming back,
    opening the page themselves)."""
    return (
        last_seen.away_since(request) is not None
        and not request.htmx
        and request.headers.get("sec-fetch-mode", "navigate") == "navigate"
    )


@never_cache
@require_GET
def while_away(request):
    """What changed since the person was last seen, once; then the feed."""
    since = last_seen.away_since(request)
    last_seen.forget_away(request)
    now = timezone.now()
    bulletins = changes_since(request.user, since, now) if since else []
    context = {"since": since, "bulletins": bulletins, "now": now, "zone_name": zone_name()}
    return render(request, "bulletins/while_away.html", context)

from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from bulletins import feed_cache
from bulletins.models import Bulletin, Recipient


def unacknowledged_immediate(user, now):
    """ "Officer safety - immediate" Orders in force for `user` that they have not acknowledged."""
    acknowledged = Recipient.objects.filter(
        bulletin=OuterRef("pk"), user=user, acknowledged_version__gte=OuterRef("ack_version")
    )
    return list(
        Bulletin.objects.in_force(now)
        .addressed_to(user)
        .filter(kind=Bulletin.Kind.ORDER, priority=Bulletin.Priority.IMMEDIATE)
        .exclude(Exists(acknowledged))
        .only("id", "title")
        .order_by("-effective_at")[:3]
    )


def kept_urgent(user, now):
    """`unacknowledged_immediate` as [{pk, title}], kept under the person's feed stamp: what
    can change it (publish, amend, lift, the clock, their acknowledgements, their unit) changes
    their feed too. Every signed-in page shows it; unchanged, it costs one Redis round trip."""
    stamp, kept = feed_cache.lookup(user, now, part="urgent")
    if kept is not None:
        return kept["bulletins"]
    bulletins = [{"pk": b.pk, "title": b.title} for b in unacknowledged_immediate(user, now)]
    until = feed_cache.valid_until(now)
    feed_cache.store(user, stamp, now=now, until=until, part="urgent", bulletins=bulletins)
    return bulletins


def urgent(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"urgent_bulletins": SimpleLazyObject(lambda: kept_urgent(user, timezone.now()))}

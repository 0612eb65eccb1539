from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from bulletins import feed_cache
from bulletins.models import Bulletin, Recipient

SHOWN = 3


def immediate_orders(user, now):
    """ "Officer safety - immediate" Orders addressed to `user` that they have not acknowledged
    and that have not ended by `now`, latest first; some may not have taken effect yet."""
    acknowledged = Recipient.objects.filter(
        bulletin=OuterRef("pk"), user=user, acknowledged_version__gte=OuterRef("ack_version")
    )
    return list(
        Bulletin.objects.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            status__in=Bulletin.LIVE_STATUSES,
            kind=Bulletin.Kind.ORDER,
            priority=Bulletin.Priority.IMMEDIATE,
        )
        .addressed_to(user)
        .exclude(Exists(acknowledged))
        .only("id", "title", "effective_at", "expires_at")
        .order_by("-effective_at")
    )


def kept_urgent(user, now):
    """The banner's Orders as [{pk, title}]: those of `immediate_orders` in force, kept under
    the person's feed stamp (publish, amend, lift, their acknowledgements and unit change it)
    until the clock next starts or ends one of them. One query when it changes; unchanged, one
    Redis round trip."""
    stamp, kept = feed_cache.lookup(user, now, part="urgent")
    if kept is not None:
        return kept["bulletins"]
    orders = immediate_orders(user, now)
    in_force = [order for order in orders if order.effective_at <= now]
    bulletins = [{"pk": order.pk, "title": order.title} for order in in_force[:SHOWN]]
    moments = [order.effective_at for order in orders if order.effective_at > now]
    moments += [order.expires_at for order in in_force if order.expires_at]
    until = feed_cache.until_next(now, moments)
    feed_cache.store(user, stamp, now=now, until=until, part="urgent", bulletins=bulletins)
    return bulletins


def urgent(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"urgent_bulletins": SimpleLazyObject(lambda: kept_urgent(user, timezone.now()))}

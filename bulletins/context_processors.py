from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

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


def urgent(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "urgent_bulletins": SimpleLazyObject(lambda: unacknowledged_immediate(user, timezone.now()))
    }

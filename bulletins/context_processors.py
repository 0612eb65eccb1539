from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from bulletins import approval_views, response_views
from bulletins.caching import feed


def urgent(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "urgent_bulletins": SimpleLazyObject(lambda: feed.urgent_banner(user, timezone.now())),
        "open_answers": SimpleLazyObject(lambda: response_views.banner(user, timezone.now())),
        "awaiting_approval": SimpleLazyObject(
            lambda: approval_views.awaiting_count(user, timezone.now())
        ),
    }

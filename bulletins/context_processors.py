from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from bulletins.caching import feed


def urgent(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"urgent_bulletins": SimpleLazyObject(lambda: feed.urgent_banner(user, timezone.now()))}

from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from bulletins import approval_views, response_views
from bulletins.caching import feed
from portal import offline, stamps


def urgent(request):
    """The banners and counts every page may show, each computed only if the page shows it;
    what they keep in the cache is read in one round trip, when the first is shown."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    read = {}

    def batch():
        if "batch" not in read:
            keys = feed.urgent_keys(user) + response_views.banner_keys(user)
            read["batch"] = stamps.Batch(keys + approval_views.awaiting_keys(user))
        return read["batch"]

    return {
        "urgent_bulletins": SimpleLazyObject(
            lambda: feed.urgent_banner(user, timezone.now(), batch=batch())
        ),
        "open_answers": SimpleLazyObject(
            lambda: response_views.banner(user, timezone.now(), batch=batch())
        ),
        "awaiting_approval": SimpleLazyObject(
            lambda: approval_views.awaiting_count(user, timezone.now(), batch=batch())
        ),
        # Whose queue of acknowledgements made offline the page sends (static/js/offline-ack.js).
        "offline_account": SimpleLazyObject(lambda: offline.account_key(user)),
    }

"""When a person was last seen, and whether they are coming back (issue 23).

`User.last_seen_at` moves at most once per SEEN_EVERY: the signed-in user's row is loaded on
every request anyway, so the common request reads it there and does no query and no write.
A person coming back (their tour started since they were last seen; without a tour, after more
than 8 hours) has the moment they were last seen kept in the session under AWAY_SINCE: the feed
first shows them what changed since (`bulletins.while_away`).
"""

from datetime import datetime, timedelta

from django.utils import timezone

from portal import tours
from portal.models import User
from portal.offline import is_offline_copy
from portal.sessions import is_auto_refresh

SEEN_EVERY = timedelta(minutes=5)
AWAY_SINCE = "away_since"


def is_returning(user, last_seen_at, now):
    """Whether a person last seen at `last_seen_at` is coming back at `now`: the latest start
    of their tour is after it (a day off or leave in between counts too), or, without a tour,
    more than 8 hours have passed. Never on a first visit (nothing to compare with)."""
    if last_seen_at is None:
        return False
    tour = tours.person_tour(user)
    if tour is None:
        return now - last_seen_at > tours.AWAY_WITHOUT_TOUR
    return last_seen_at < tours.latest_tour_start(tour, now)


def note_seen(request, now):
    """Move the person's `last_seen_at` to `now` (at most once per SEEN_EVERY) and, if they are
    coming back, keep when they were last seen under AWAY_SINCE in the session."""
    user = request.user
    if user.last_seen_at is not None and now - user.last_seen_at < SEEN_EVERY:
        return
    if is_returning(user, user.last_seen_at, now):
        request.session[AWAY_SINCE] = user.last_seen_at.isoformat()
    User.objects.filter(pk=user.pk).update(last_seen_at=now)
    user.last_seen_at = now


def away_since(request):
    """When a person coming back was last seen (None if they are not coming back)."""
    value = request.session.get(AWAY_SINCE)
    return datetime.fromisoformat(value) if value else None


def forget_away(request):
    request.session.pop(AWAY_SINCE, None)


class LastSeenMiddleware:
    """Notes signed-in people as seen (see `note_seen`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Only a page opened counts as a visit: not a form sent (an acknowledgement at a shift
        # change writes nothing more), a page refreshing itself or the device's offline copy.
        if (
            request.method == "GET"
            and request.user.is_authenticated
            and not is_auto_refresh(request)
            and not is_offline_copy(request)
        ):
            note_seen(request, timezone.now())
        return self.get_response(request)

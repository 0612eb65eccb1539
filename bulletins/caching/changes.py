"""What changed: the only cache names the services use. They say what they changed; the
counters here decide which kept entries (`caching.feed`, `coverage`) are no longer served.

- `bulletins_changed(agency_id)`: a bulletin of the agency was published, amended, lifted,
  took effect, ended, came up for review or was re-affirmed: any feed, banner or coverage
  figures of that agency may show it;
- `reader_changed(user, bulletin_id)`: the person opened or acknowledged something (their feed
  and banner), and where a recipient row changed, that bulletin's coverage figures too;
- `recipients_changed(bulletin_id)`: people were told of the bulletin (its figures);
- `readers_changed(user_ids)`: what each of these people is shown changed (the supervisors told
  of a "cannot comply": their banner).
"""

from portal import stamps


def reader_counter(user_id):
    return stamps.key("reader", user_id)


def recipients_counter(bulletin_id):
    return stamps.key("recipients", bulletin_id)


def bulletins_changed(agency_id):
    """Call inside the transaction of the change."""
    stamps.agency_changed(agency_id)


def reader_changed(user, bulletin_id=None):
    """The person's own feed changed; with `bulletin_id`, that bulletin's figures too (both
    counters in one round trip)."""
    counters = [reader_counter(user.pk)]
    if bulletin_id is not None:
        counters.append(recipients_counter(bulletin_id))
    stamps.bump(*counters)


def readers_changed(user_ids):
    """What `reader_changed` forgets, for several people at once (one round trip): e.g. the
    banner of the supervisors told of a "cannot comply"."""
    counters = [reader_counter(pk) for pk in user_ids]
    if counters:
        stamps.bump(*counters)


def recipients_changed(bulletin_id):
    stamps.bump(recipients_counter(bulletin_id))

"""Tours of duty: which tours a unit has, when one runs, who is on duty.

A unit uses its own tours, else those of the nearest unit up that has some (the agency's root
holds the agency's default). Times are the agency's local time (settings.TIME_ZONE); the windows
returned are aware datetimes in UTC. An agency's tours are kept in the cache under a stamp
(`portal.stamps`), forgotten when they change (`tours_changed`).
"""

from datetime import UTC, datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone

from portal import stamps
from portal.models import Tour, Unit, User

# A person without a tour, back after this long, is shown what changed while they were away.
AWAY_WITHOUT_TOUR = timedelta(hours=8)


def _agency_path(unit):
    return unit.path[: Unit.steplen]


def _agency_id(unit):
    if unit.depth == 1:
        return unit.pk
    return Unit.objects.filter(path=_agency_path(unit)).values_list("pk", flat=True).first()


def _counter(agency_id):
    return stamps.key("tours", agency_id)


def tours_changed(unit):
    """The tours of `unit`'s agency changed: forget what is kept of them."""
    stamps.bump(_counter(_agency_id(unit)))


def _agency_tours(agency_path, agency_id, now):
    """{unit path: [Tour, ...]} of every unit of the agency that has tours of its own, kept
    under the agency's id (a path is used again by another agency once one is gone)."""
    stamp, entry = stamps.kept([_counter(agency_id)], (), stamps.key("tours-of", agency_id), now)
    if entry is None:
        rows = list(
            Tour.objects.filter(unit__path__startswith=agency_path)
            .order_by("unit__path", "position", "starts_at", "name")
            .values_list("pk", "unit_id", "unit__path", "name", "starts_at", "ends_at", "position")
        )
        entry = stamps.keep(
            stamps.key("tours-of", agency_id),
            stamp,
            now=now,
            until=now + timedelta(seconds=stamps.MAX_AGE_SECONDS),
            rows=rows,
        )
    by_path = {}
    for pk, unit_id, path, name, starts_at, ends_at, position in entry["rows"]:
        by_path.setdefault(path, []).append(
            Tour(
                pk=pk,
                unit_id=unit_id,
                name=name,
                starts_at=starts_at,
                ends_at=ends_at,
                position=position,
            )
        )
    return by_path


def _nearest_tours(unit, by_path):
    for depth in range(len(unit.path) // Unit.steplen, 0, -1):
        tours = by_path.get(unit.path[: depth * Unit.steplen])
        if tours:
            return tours
    return []


def _named(found, name):
    wanted = (name or "").strip().casefold()
    if not wanted:
        return None
    return next((tour for tour in found if tour.name.casefold() == wanted), None)


class TourBook:
    """`tours_for` and `find_tour` for many units at once (a roster import): each agency's
    tours are read once."""

    def __init__(self):
        self._agencies = {}

    def tours_for(self, unit, *, agency_id):
        if agency_id not in self._agencies:
            self._agencies[agency_id] = _agency_tours(_agency_path(unit), agency_id, timezone.now())
        return _nearest_tours(unit, self._agencies[agency_id])

    def find(self, unit, name, *, agency_id):
        return _named(self.tours_for(unit, agency_id=agency_id), name)

    def person_tour(self, user, unit=None):
        """`user`'s tour in `unit` (default: their unit; pass a unit already loaded)."""
        unit = unit or user.unit
        if not user.tour or unit is None:
            return None
        return self.find(unit, user.tour, agency_id=user.agency_id)


def tours_for(unit, *, agency_id=None):
    """The unit's own tours, else those of the nearest unit up with some ([] if none). Pass the
    agency's id where known (`user.agency_id`): else finding it costs a query."""
    if unit is None:
        return []
    agency_id = agency_id or _agency_id(unit)
    by_path = _agency_tours(_agency_path(unit), agency_id, timezone.now())
    return _nearest_tours(unit, by_path)


def find_tour(unit, name, *, agency_id=None):
    """The tour of `unit` called `name` (any case), or None."""
    return _named(tours_for(unit, agency_id=agency_id), name)


def person_tour(user):
    """The tour of the user's unit named `user.tour`; None if blank or unknown."""
    if not user.tour or user.unit_id is None:
        return None
    return find_tour(user.unit, user.tour, agency_id=user.agency_id)


def _zone():
    return timezone.get_default_timezone()


def local_date(at):
    return timezone.localtime(at, _zone()).date()


def _local(day, at_time):
    return datetime.combine(day, at_time, tzinfo=_zone())


def tour_window(tour, day):
    """(start, end) in UTC of the occurrence of `tour` starting on local date `day`. A tour that
    ends at or before its start time ends the next day (Midnight 23:00-07:00)."""
    end_day = day if tour.ends_at > tour.starts_at else day + timedelta(days=1)
    start = _local(day, tour.starts_at).astimezone(UTC)
    end = _local(end_day, tour.ends_at).astimezone(UTC)
    return start, end


def _occurrences(tour, around):
    """Windows of `tour` starting on the local day before, of and after `around`."""
    today = local_date(around)
    return [tour_window(tour, today + timedelta(days=shift)) for shift in (-1, 0, 1, 2)]


def nearest_tour_start(unit, now):
    """(tour, start) of the occurrence of the unit's tours starting nearest `now`, past or
    future (on a tie, the one already started); None if the unit has no tours."""
    candidates = [
        (abs(start - now), start > now, start, tour)
        for tour in tours_for(unit)
        for start, _end in _occurrences(tour, now)
    ]
    if not candidates:
        return None
    _distance, _future, start, tour = min(candidates, key=lambda c: c[:3])
    return tour, start


def current_window(tour, at):
    """(start, end) of the occurrence of `tour` running at `at`, or None."""
    return next(((s, e) for s, e in _occurrences(tour, at) if s <= at < e), None)


def on_duty(user, at):
    """True if the person has no tour (always chased as before) or is inside an occurrence."""
    tour = person_tour(user)
    return tour is None or current_window(tour, at) is not None


def next_tour_start(user, at):
    """Start of the person's next tour occurrence after `at` (None if they have no tour)."""
    tour = person_tour(user)
    if tour is None:
        return None
    return tour_start_after(tour, at)


def tour_start_after(tour, at):
    return min(start for start, _end in _occurrences(tour, at) if start > at)


def latest_tour_start(tour, at):
    """The start of the latest occurrence of `tour` that has started by `at`."""
    return max(start for start, _end in _occurrences(tour, at) if start <= at)


def waiting_until(tour, told_at, now):
    """When a person of `tour` told at `told_at` while off duty starts the tour that their
    chase waits for, if it has not started by `now`; None if they were told on duty, have no
    tour, or their tour has started since."""
    if tour is None or current_window(tour, told_at) is not None:
        return None
    start = tour_start_after(tour, told_at)
    return start if start > now else None


def tour_roster(unit, tour):
    """Active people of `unit` itself (not its subtree) whose regular tour is `tour.name`."""
    return User.objects.filter(unit=unit, is_active=True, tour__iexact=tour.name).order_by(
        "name", "pk"
    )


def tour_choices(unit, *, agency_id=None):
    """(value, label) for a select of the unit's tours, "None" first."""
    found = tours_for(unit, agency_id=agency_id) if unit is not None else []
    return [("", "None")] + [(tour.name, str(tour)) for tour in found]


def parse_hhmm(value):
    """A time from "HH:MM" (24-hour), or None if it is not one."""
    value = (value or "").strip()
    try:
        parsed = datetime.strptime(value, "%H:%M")  # noqa: DTZ007 - a time of day, no date
    except ValueError:
        return None
    if len(value) != 5:
        return None
    return time(parsed.hour, parsed.minute)


def tour_owners():
    """{unit path: [Tour, ...]} of every unit that has tours of its own, in every agency (a
    handful of rows: one query)."""
    owners = {}
    for tour in Tour.objects.select_related("unit").order_by("unit__path", "position"):
        owners.setdefault(tour.unit.path, []).append(tour)
    return owners


def _gaps_ending_after(tour, since, now):
    """The off-duty gaps [end of one occurrence, start of the next) of `tour` that begin by
    `now` and whose next start is after `since`: being told in one, the person's clock starts at
    that next start, which is still after `since`."""
    first, last = local_date(since) - timedelta(days=1), local_date(now) + timedelta(days=1)
    windows = [tour_window(tour, first + timedelta(days=n)) for n in range((last - first).days + 1)]
    return [
        (end, next_start)
        for (_start, end), (next_start, _end) in zip(windows, windows[1:], strict=False)
        if next_start > since and end <= now
    ]


def told_off_duty_waiting(now, wait, owners, *, person="user__", told="told_at"):
    """A Q over rows of people (the `person` relation prefix) told at `told` while off duty,
    whose next tour started less than `wait` before `now` or has not started: their chase waits.
    None when there are no tours. Set-based: one condition per tour and gap, never per person."""
    since = now - wait
    held = Q()
    for path, own in owners.items():
        below = [other for other in owners if other != path and other.startswith(path)]
        in_units = Q(**{f"{person}unit__path__startswith": path})
        for other in below:
            in_units &= ~Q(**{f"{person}unit__path__startswith": other})
        for tour in own:
            gaps = Q()
            for start, end in _gaps_ending_after(tour, since, now):
                gaps |= Q(**{f"{told}__gte": start, f"{told}__lt": end})
            if gaps:
                held |= in_units & Q(**{f"{person}tour__iexact": tour.name}) & gaps
    return held or None

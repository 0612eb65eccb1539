"""Orders on the same topic at two levels of command (issue "Command governance").

A *higher order* of a new Order is an Order in force in the same agency, on the same topic,
addressed to some of the same people, and issued from a higher command: one of its audience
units (with the units under it) is a proper ancestor of one of the new order's units and sits
above all of them (the department's order above a precinct's). An exercise is compared with
exercises and real orders; a real order only with real orders.

The author sees the higher orders they may open (never one they may not: a warning must not
reveal an order) and ticks **My order does not relax it** before publishing; on publication
each higher order's issuer is told (the CONFLICT event).
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse

from bulletins import notifications, permissions
from bulletins.models import Bulletin, NotificationEvent, Topic
from portal.models import Unit

MUST_TICK = "{command} has an order in force on this topic for these people: {titles}. Tick "
MUST_TICK += '"My order does not relax it" if yours does not relax it, or change your order.'


@dataclass
class Subject:
    """What is compared: a bulletin, or a draft still in the form."""

    topic_id: int | None
    kind: str
    is_exercise: bool
    targets: list  # [(unit, include_subtree), ...]
    classes: set = field(default_factory=set)
    pk: int | None = None

    @classmethod
    def of(cls, bulletin, *, loaded=False):
        """`loaded`: the bulletin's audience rows and their units are prefetched."""
        targets = (
            [(row.unit, row.include_subtree) for row in bulletin.audience.all()]
            if loaded
            else bulletin.audience_targets()
        )
        return cls(
            topic_id=bulletin.topic_id,
            kind=bulletin.kind,
            is_exercise=bulletin.is_exercise,
            targets=targets,
            classes=set(bulletin.member_classes),
            pk=bulletin.pk,
        )


def subject_of_form(cleaned):
    """The draft in a bound BulletinForm's cleaned data."""
    return Subject(
        topic_id=cleaned["topic"].pk if cleaned.get("topic") else None,
        kind=cleaned.get("kind") or "",
        is_exercise=bool(cleaned.get("is_exercise")),
        targets=cleaned.get("targets") or [],
        classes={c for c in ("sworn", "auxiliary", "civilian") if cleaned.get(f"to_{c}")},
    )


def _ancestors_above(units):
    """Paths of the proper ancestors of `units` that sit above every one of them."""
    top_depth = min(unit.depth for unit in units)
    return {unit.path[: level * Unit.steplen] for unit in units for level in range(1, top_depth)}


def _is_higher(candidate, subject, above):
    if candidate.pk == subject.pk or not (set(candidate.member_classes) & subject.classes):
        return False
    return any(row.include_subtree and row.unit.path in above for row in candidate.audience.all())


def _orders_in_force(now, *, exercises=True):
    """Orders in force at `now`, with what the comparison reads (three queries in all)."""
    orders = Bulletin.objects.in_force(now).filter(kind=Bulletin.Kind.ORDER)
    if not exercises:
        orders = orders.filter(is_exercise=False)
    return orders.select_related("topic", "issued_by").prefetch_related("audience__unit")


def higher_orders(subject, now, *, viewer=None):
    """The higher orders in force at `now` for `subject` (a Bulletin or a `Subject`), oldest
    first; only those `viewer` may open, when given. Each has `command`: who issued it, in
    words ("the department", "Manhattan South")."""
    if isinstance(subject, Bulletin):
        if not subject.pk or not subject.topic_id or subject.kind != Bulletin.Kind.ORDER:
            return []
        subject = Subject.of(subject)
    if subject.kind != Bulletin.Kind.ORDER or not subject.topic_id or not subject.targets:
        return []
    units = [unit for unit, _ in subject.targets]
    above = _ancestors_above(units)
    if not above:
        return []
    orders = _orders_in_force(now, exercises=subject.is_exercise).filter(
        agency__path=units[0].agency_path,
        topic_id=subject.topic_id,
        audience__unit__path__in=above,
        audience__include_subtree=True,
    )
    if viewer is not None:
        orders = orders.filter(pk__in=permissions.visible_bulletins(viewer).values("pk"))
    orders = orders.distinct().order_by("effective_at", "pk")
    found = [order for order in orders if _is_higher(order, subject, above)]
    for order in found:
        order.command = command_words(order)
    return found


def command_words(bulletin):
    """ "the department" for an agency-wide order, else its highest audience unit's name."""
    top = min((row.unit for row in bulletin.audience.all()), key=lambda unit: unit.depth)
    return "the department" if top.depth == 1 else top.name


def check_before_publishing(bulletin, *, now):
    """Refuses to publish an Order that meets a higher order on its topic unless its author
    ticked "My order does not relax it"."""
    if bulletin.does_not_relax:
        return
    higher = higher_orders(bulletin, now, viewer=bulletin.issued_by)
    if higher:
        raise ValidationError({"does_not_relax": must_tick_message(higher)})


def must_tick_message(higher):
    titles = ", ".join(order.title for order in higher)
    return MUST_TICK.format(command=higher[0].command.capitalize(), titles=titles)


def tell_higher_issuers(bulletin, *, now):
    """On publication: each higher order's issuer is told of `bulletin` (once per pair)."""
    higher = higher_orders(bulletin, now)
    if not higher:
        return []
    units = [unit.name for unit, _ in bulletin.audience_targets()]
    detail = {
        "bulletin": bulletin.pk,
        "title": bulletin.title,
        "topic": bulletin.topic.name,
        "units": units,
        "issued_by": bulletin.issued_by.name,
        "url": settings.SITE_URL.rstrip("/") + reverse("bulletins:detail", args=[bulletin.pk]),
    }
    for order in higher:
        notifications.queue_event(
            order, NotificationEvent.Event.CONFLICT, now=now, key=f"b{bulletin.pk}", detail=detail
        )
    return higher


def topics_for(user, bulletin=None):
    """The topics an author may choose: their agency's, not archived (a draft keeps its own)."""
    agency_id = bulletin.agency_id if bulletin is not None and bulletin.pk else user.agency_id
    kept = bulletin.topic_id if bulletin is not None else None
    return Topic.objects.filter(agency_id=agency_id).filter(Q(is_archived=False) | Q(pk=kept))


@dataclass
class Pair:
    higher: Bulletin
    lower: Bulletin
    topic: Topic
    since: object


def topic_pairs(user, now):
    """For the command overview: the pairs of real orders in force on one topic at two levels
    that `user` may open, by topic, then since when. Three queries, whatever the number."""
    visible = permissions.visible_bulletins(user).values("pk")
    orders = list(
        _orders_in_force(now, exercises=False).filter(pk__in=visible, topic__isnull=False)
    )
    pairs = []
    for lower in orders:
        subject = Subject.of(lower, loaded=True)
        if not subject.targets:
            continue
        above = _ancestors_above([unit for unit, _ in subject.targets])
        for higher in orders:
            if higher.topic_id == lower.topic_id and _is_higher(higher, subject, above):
                higher.command = command_words(higher)
                since = max(higher.effective_at, lower.effective_at)
                pairs.append(Pair(higher=higher, lower=lower, topic=lower.topic, since=since))
    pairs.sort(key=lambda pair: (pair.topic.position, pair.topic.name, pair.since))
    return pairs

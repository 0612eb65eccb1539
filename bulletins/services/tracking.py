"""Acknowledgement coverage: who was told, who opened, who acknowledged, who is outstanding.

Every figure is one GROUP BY or aggregate over the recipient table (indexed by bulletin), so a
dashboard costs the same few queries whatever the audience size.
"""

from datetime import timedelta

from django.db.models import Count, Q

from bulletins.models import Recipient

BUCKETS = (15, 30, 60)


def acknowledged_q(bulletin):
    """Recipients who acknowledged the latest material version (or a later one)."""
    return Q(acknowledged_version__gte=bulletin.ack_version)


def outstanding_q(bulletin):
    return Q(acknowledged_version__isnull=True) | Q(acknowledged_version__lt=bulletin.ack_version)


def coverage_summary(bulletin, recipients=None):
    """The headline figures of one bulletin, in one query.

    `recipients` narrows the audience (a supervisor's scope); by default everyone told.
    """
    rows = recipients if recipients is not None else Recipient.objects.filter(bulletin=bulletin)
    acknowledged = acknowledged_q(bulletin)
    buckets = {
        f"within_{minutes}": Count(
            "pk",
            filter=acknowledged
            & Q(acknowledged_at__lte=bulletin.effective_at + timedelta(minutes=minutes)),
        )
        for minutes in BUCKETS
    }
    figures = rows.aggregate(
        audience=Count("pk"),
        opened=Count("pk", filter=Q(first_opened_at__isnull=False)),
        acknowledged=Count("pk", filter=acknowledged),
        earlier_version_only=Count("pk", filter=Q(acknowledged_version__lt=bulletin.ack_version)),
        on_leave=Count("pk", filter=outstanding_q(bulletin) & Q(user__is_on_leave=True)),
        **buckets,
    )
    figures["outstanding"] = figures["audience"] - figures["acknowledged"]
    figures["percent"] = _percent(figures["acknowledged"], figures["audience"])
    return figures


def _percent(part, whole):
    return round(100 * part / whole) if whole else 0

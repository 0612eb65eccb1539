"""Writing audit events. Call `record()` inside the transaction of the change it describes."""

from django.utils import timezone

from portal.models import AuditEvent


def client_ip(request):
    return request.META.get("REMOTE_ADDR") or None


def record(
    action, *, by=None, obj=None, version=None, request=None, outcome="success", now=None, **detail
):
    event = AuditEvent(
        at=now or timezone.now(),
        actor=by if by is not None and by.is_authenticated else None,
        actor_label=getattr(by, "email", "") or "",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_version=version,
        outcome=outcome,
        detail=detail,
    )
    if request is not None:
        event.ip = client_ip(request)
        event.user_agent = request.headers.get("user-agent", "")[:400]
        event.request_id = getattr(request, "request_id", "")
    event.save()
    return event

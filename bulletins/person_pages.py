"""A person's record: who they are, their sign-in, and the orders they had to acknowledge
with the reminders sent. Those who follow coverage see it for the people in their scope;
those who manage people also see the sign-ins and the actions (`portal.people_views`)."""

from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bulletins import permissions
from bulletins.models import Bulletin, Recipient
from portal import lockout, people
from portal.scope import people_in_scope

PAGE_SIZE = 50


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_GET
def person_record(request, pk):
    now = timezone.now()
    person = get_object_or_404(people_in_scope(request.user).select_related("unit"), pk=pk)
    obligations = (
        Recipient.objects.filter(
            user=person, bulletin__kind=Bulletin.Kind.ORDER, bulletin__is_exercise=False
        )
        .select_related("bulletin", "unit")
        .prefetch_related("reminders__unit", "reminders__sent_by")
        .order_by("-added_at")
    )
    obligations = permissions.recipients_in_scope(request.user, obligations)
    page = Paginator(obligations, PAGE_SIZE).get_page(request.GET.get("page"))
    unit_path = person.unit.path_names() if person.unit_id else []
    context = {"person": person, "unit_path": unit_path, "page": page, "now": now}
    return render(request, "bulletins/person.html", context | _management(request, person, now))


def _management(request, person, now):
    """What only those who may manage this person see: sign-ins, lock state, the actions."""
    user = request.user
    if not people.may_manage_person(user, person):  # MANAGE_PEOPLE, and in scope
        return {"can_manage": False}
    return {
        "can_manage": True,
        "is_self": person.pk == user.pk,
        "is_locked": bool(lockout.locked_logins([person.email], now=now)),
        "sign_ins": people.recent_sign_ins(person),
    }

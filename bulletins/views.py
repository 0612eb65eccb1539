from django.shortcuts import render
from django.utils import timezone

from bulletins.models import Bulletin


def feed(request):
    now = timezone.now()
    bulletins = Bulletin.objects.in_force(now).addressed_to(request.user).urgent_first()
    return render(request, "bulletins/feed.html", {"bulletins": bulletins, "now": now})

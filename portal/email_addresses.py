"""People's email addresses are managed by admins and the roster only (issue 18).

An address is how the roster import once recognised a person, and allauth's own pages let
anyone add one, make it primary and so take the identity an admin was about to import. Those
pages (add, remove, make primary, send or confirm a verification) answer with a redirect and a
message instead: `portal.urls` routes their paths here ahead of allauth's.
"""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

MANAGED_BY_ADMINS = (
    "Your email address is managed by your agency's admins and the roster: "
    "ask an admin to change it."
)


@require_http_methods(["GET", "HEAD", "POST"])
def email_managed_by_admins(request, key=None):
    messages.info(request, MANAGED_BY_ADMINS)
    return redirect("email_preferences")

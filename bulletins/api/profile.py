"""The "API tokens" section of a person's profile: make, list and revoke personal tokens."""

from datetime import timedelta
from http import HTTPStatus

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from bulletins.api import tokens
from bulletins.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Name",
        help_text='The system that will use it, e.g. "Precinct display board".',
    )
    lifetime_days = forms.TypedChoiceField(
        choices=[(days, f"{days} days") for days in tokens.LIFETIME_DAYS],
        coerce=int,
        initial=ApiToken.DEFAULT_LIFETIME.days,
        label="Expires after",
    )
    is_read_only = forms.BooleanField(
        required=False,
        initial=True,
        label="Read-only",
        help_text="It can read bulletins and feeds, but not acknowledge or change anything.",
    )


@never_cache
@require_http_methods(["GET", "POST"])
def token_list(request):
    now = timezone.now()
    form = TokenForm(request.POST if request.method == "POST" else None)
    secret = None
    status = HTTPStatus.OK
    if request.method == "POST":
        if form.is_valid():
            token, secret = tokens.issue_token(
                request.user,
                name=form.cleaned_data["name"],
                is_read_only=form.cleaned_data["is_read_only"],
                lifetime=timedelta(days=form.cleaned_data["lifetime_days"]),
                now=now,
            )
            form = TokenForm()
        else:
            status = HTTPStatus.UNPROCESSABLE_ENTITY
    context = {
        "form": form,
        "secret": secret,
        "tokens": [(token, token.state_at(now)) for token in request.user.api_tokens.all()],
    }
    return render(request, "bulletins/profile_tokens.html", context, status=status)


@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if tokens.revoke_token(token, by=request.user, now=timezone.now()):
        messages.success(request, f'Revoked "{token.name}". It no longer works.')
    return redirect("bulletins:tokens")

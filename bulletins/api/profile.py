"""The "API tokens" section of a person's profile: make, list and revoke personal tokens.

Making one needs a recent sign-in (the page itself does not); revoking never does."""

from datetime import timedelta
from http import HTTPStatus

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from bulletins.api import tokens
from bulletins.models import ApiToken
from portal.decorators import recent_sign_in_required


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
    can_write = forms.BooleanField(
        required=False,
        initial=False,
        label="Allow changes",
        help_text=(
            "Without this it can only read bulletins and feeds. With it, it can also "
            "acknowledge and do what your role lets you do now, never more."
        ),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if not tokens.may_write(user):
            del self.fields["can_write"]  # read-only roles make read-only tokens


@never_cache
@require_http_methods(["GET", "POST"])
@recent_sign_in_required(allow_get=True)
def token_list(request):
    now = timezone.now()
    form = TokenForm(request.POST if request.method == "POST" else None, user=request.user)
    secret = None
    status = HTTPStatus.OK
    if request.method == "POST":
        if form.is_valid():
            try:
                token, secret = tokens.issue_token(
                    request.user,
                    name=form.cleaned_data["name"],
                    is_read_only=not form.cleaned_data.get("can_write", False),
                    lifetime=timedelta(days=form.cleaned_data["lifetime_days"]),
                    now=now,
                )
            except ValidationError as error:
                form.add_error(None, error.messages)
            else:
                form = TokenForm(user=request.user)
        if secret is None:
            status = HTTPStatus.UNPROCESSABLE_ENTITY
    fingerprint = ApiToken.fingerprint_of(request.user)
    context = {
        "form": form,
        "secret": secret,
        "tokens": [
            (token, token.state_at(now, fingerprint)) for token in request.user.api_tokens.all()
        ],
    }
    return render(request, "bulletins/profile_tokens.html", context, status=status)


@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if tokens.revoke_token(token, by=request.user, now=timezone.now()):
        messages.success(request, f'Revoked "{token.name}". It no longer works.')
    return redirect("bulletins:tokens")

"""The pages of answering back: "I cannot comply" and "Report implemented" (the officer), and
resolving a cannot-comply answer (a supervisor whose scope holds the officer's unit). What the
bulletin page, the coverage page and the banner show of the answers is built here too."""

from http import HTTPStatus

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from bulletins import permissions
from bulletins.caching import changes
from bulletins.models import Bulletin, Response
from bulletins.services import responses
from portal import stamps
from portal.decorators import rate_limited
from portal.scope import scope_root, scope_unit_ids
from portal.validators import refuse_control_characters_but_line_breaks

ANSWERS_LISTED = 200  # on the coverage page; the API and the CSV hold them all
BANNER_BULLETINS = 3


class CannotComplyForm(forms.Form):
    reason = forms.ModelChoiceField(
        queryset=Response.objects.none(),
        widget=forms.RadioSelect,
        label="Reason",
        empty_label=None,
        error_messages={"required": "Choose a reason.", "invalid_choice": "Choose a reason."},
    )
    detail = forms.CharField(
        required=False,
        max_length=responses.MAX_TEXT,
        label="Details",
        help_text='What stops you, and where you are. Required for "Other".',
        widget=forms.Textarea(attrs={"rows": 4}),
        validators=[refuse_control_characters_but_line_breaks],
    )

    def __init__(self, *args, bulletin, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].queryset = responses.reasons(bulletin)


class ImplementedForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=responses.MAX_TEXT,
        label="Note (optional)",
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_control_characters_but_line_breaks],
    )


class ResolveForm(forms.Form):
    resolution = forms.CharField(
        max_length=responses.MAX_TEXT,
        label="How it was resolved",
        help_text='For example "Paired with P.O. Diaz at 08:40". The officer is told.',
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_control_characters_but_line_breaks],
        error_messages={"required": "Write how it was resolved."},
    )


def _order_for_reader(user, pk):
    """The published bulletin `pk` if it is addressed to `user`, else 404."""
    bulletin = get_object_or_404(Bulletin.objects.published().select_related("agency"), pk=pk)
    if not bulletin.is_addressed_to(user):
        raise Http404
    return bulletin


def _answer(request, form, answer):
    """Call the service `answer()` for a valid `form`: True when it recorded the answer; its
    refusal becomes the form's error."""
    if request.method != "POST" or not form.is_valid():
        return False
    try:
        answer()
    except ValidationError as error:
        form.add_error(None, error)
        return False
    except Bulletin.DoesNotExist:
        raise Http404 from None
    return True


def _form_page(request, template, context):
    status = HTTPStatus.UNPROCESSABLE_ENTITY if context["form"].is_bound else HTTPStatus.OK
    return render(request, template, context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("respond", setting="ACKNOWLEDGE_RATE_PER_MINUTE")
def bulletin_cannot_comply(request, pk):
    bulletin = _order_for_reader(request.user, pk)
    form = CannotComplyForm(request.POST if request.method == "POST" else None, bulletin=bulletin)
    if _answer(request, form, lambda: responses.cannot_comply(
        bulletin, user=request.user, reason=form.cleaned_data["reason"],
        detail=form.cleaned_data["detail"], now=timezone.now(), request=request,
    )):  # fmt: skip
        messages.success(
            request,
            "Sent to your supervisors. They will contact you. Until then the order still "
            "applies: do what you safely can.",
        )
        return redirect("bulletins:detail", pk=bulletin.pk)
    context = {"bulletin": bulletin, "form": form, "state": bulletin.state_at(timezone.now())}
    return _form_page(request, "bulletins/cannot_comply.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@rate_limited("respond", setting="ACKNOWLEDGE_RATE_PER_MINUTE")
def bulletin_implemented(request, pk):
    bulletin = _order_for_reader(request.user, pk)
    form = ImplementedForm(request.POST if request.method == "POST" else None)
    if _answer(request, form, lambda: responses.report_implemented(
        bulletin, user=request.user, note=form.cleaned_data["note"], now=timezone.now(),
        request=request,
    )):  # fmt: skip
        messages.success(request, "Reported implemented. Thank you.")
        return redirect("bulletins:detail", pk=bulletin.pk)
    context = {
        "bulletin": bulletin,
        "form": form,
        "state": bulletin.state_at(timezone.now()),
        "asked": responses.must_report_implemented(bulletin, request.user),
        "prompt": _prompt(bulletin),
    }
    return _form_page(request, "bulletins/implemented_form.html", context)


@never_cache
@permission_required(permissions.VIEW_COVERAGE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def response_resolve(request, response_pk):
    """Resolve a cannot-comply answer: 403 for whoever follows no coverage, 404 unless the
    bulletin is one they follow, 403 when the officer's unit is outside their scope."""
    response = get_object_or_404(
        Response.objects.select_related("bulletin", "user", "unit", "resolved_by", "version"),
        pk=response_pk,
        kind=Response.Kind.CANNOT_COMPLY,
        bulletin__in=permissions.trackable_bulletins(request.user),
    )
    if not responses.can_resolve(request.user, response):
        raise PermissionDenied
    form = ResolveForm(request.POST if request.method == "POST" else None)
    if response.resolved_at is None and _answer(request, form, lambda: responses.resolve(
        response, by=request.user, resolution=form.cleaned_data["resolution"],
        now=timezone.now(),
    )):  # fmt: skip
        messages.success(request, f"Resolved. {response.user.name} is told.")
        return redirect("bulletins:coverage", pk=response.bulletin_id)
    context = {"response": response, "bulletin": response.bulletin, "form": form}
    return _form_page(request, "bulletins/resolve.html", context)


def _prompt(bulletin):
    return bulletin.implemented_prompt or "Report when this order is carried out."


def reader_context(user, bulletin, *, is_reader, state):
    """What the bulletin page shows a reader of their answers: whether they may answer, and
    what they said (latest first)."""
    if not (is_reader and bulletin.requires_acknowledgement):
        return {"can_answer": False, "my_answers": []}
    mine = list(
        Response.objects.filter(bulletin=bulletin, user=user)
        .select_related("resolved_by", "version")
        .order_by("-created_at", "-id")
    )
    in_force = state == Bulletin.Status.IN_FORCE
    asked = in_force and responses.must_report_implemented(bulletin, user)
    reported = any(
        answer.kind == Response.Kind.IMPLEMENTED and answer.version.number == bulletin.version
        for answer in mine
    )
    unit_report = None
    if asked and not reported and bulletin.implemented_from == Bulletin.ImplementedFrom.UNITS:
        unit_report = (  # one report per unit counts: a colleague's will do
            Response.objects.filter(
                bulletin=bulletin, kind=Response.Kind.IMPLEMENTED, unit_id=user.unit_id,
                version__number=bulletin.version,
            ).select_related("user", "unit").first()
        )  # fmt: skip
    return {
        "can_answer": in_force,
        "must_report": asked and not reported and unit_report is None,
        "unit_report": unit_report,
        "implemented_prompt": _prompt(bulletin),
        "my_answers": mine,
    }


def answers_in_scope(user, bulletin):
    """The cannot-comply answers to `bulletin` from the units `user` oversees, open first."""
    answers = Response.objects.filter(bulletin=bulletin, kind=Response.Kind.CANNOT_COMPLY)
    if not user.is_superuser:
        answers = answers.filter(unit_id__in=scope_unit_ids(user))
    return answers.select_related("user", "unit", "resolved_by").order_by(
        F("resolved_at").desc(nulls_first=True), "-created_at", "-id"
    )


def coverage_context(user, bulletin):
    """The coverage page's list of cannot-comply answers in `user`'s scope."""
    answers = answers_in_scope(user, bulletin)
    listed = list(answers[:ANSWERS_LISTED])
    if len(listed) < ANSWERS_LISTED:  # all of them: counted here, no second query
        opened = sum(answer.resolved_at is None for answer in listed)
        counts = {"total": len(listed), "open": opened}
    else:
        counts = answers.order_by().aggregate(
            total=Count("pk"), open=Count("pk", filter=Q(resolved_at__isnull=True))
        )
    return {"cannot_comply": listed, "cannot_comply_counts": counts}


def banner_keys(user):
    """What `banner` reads from the cache (for a `stamps.Batch`); nothing for those it skips."""
    if user.role not in responses.CHAIN_ROLES or user.is_superuser:
        return []
    counters = [stamps.agency_counter(user.agency_id), changes.reader_counter(user.pk)]
    return [*counters, stamps.key("answers-banner", user.pk)]


def banner(user, now, *, batch=None):
    """For a supervisor or admin: the Orders in force with open cannot-comply answers from the
    units they oversee, as [{pk, title, open}] (most answers first). Kept under the person's
    stamp, as the urgent banner is (an answer or its resolution bumps the counter of everyone
    it concerns: `responses._told`), until one of those Orders ends; when it changes, one query
    over the open answers' partial index. Nothing (and no query) for anyone else."""
    keys = banner_keys(user)
    if not keys:
        return []
    *counters, entry_key = keys
    state = (user.unit_id, user.role, user.is_active)
    stamp, entry = stamps.kept(counters, state, entry_key, now, batch=batch)
    if entry is not None:
        return entry["bulletins"]
    rows = _open_answers(user, now)
    ends = [row.pop("expires_at") for row in rows]
    until = stamps.until_next(now, [end for end in ends if end is not None])
    stamps.keep(entry_key, stamp, now=now, until=until, bulletins=rows)
    return rows


def _open_answers(user, now):
    root = scope_root(user)
    if root is None:
        return []
    rows = (
        Response.objects.filter(
            kind=Response.Kind.CANNOT_COMPLY,
            resolved_at__isnull=True,
            unit__path__startswith=root.path,
            bulletin__in=Bulletin.objects.in_force(now),
        )
        .values("bulletin_id", "bulletin__title", "bulletin__expires_at")
        .annotate(open=Count("pk"))
        .order_by("-open", "-bulletin_id")[:BANNER_BULLETINS]
    )
    return [
        {"pk": row["bulletin_id"], "title": row["bulletin__title"], "open": row["open"],
         "expires_at": row["bulletin__expires_at"]}
        for row in rows
    ]  # fmt: skip

"""The second pair of eyes, over HTTP: the Awaiting approval page, Submit for approval, Approve,
Send back, Publish now in an emergency, and Confirm or Lift an emergency publication.

Each fetches the bulletin through `permissions.manageable_bulletins` (outside it: 404) and
makes one call to `services.approval`, which decides who may approve (else 403)."""

from http import HTTPStatus

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bulletins import permissions
from bulletins.models import ApprovalStep, Bulletin
from bulletins.services import approval, authoring
from portal import stamps
from portal.decorators import recent_sign_in_required
from portal.local_time import zone_name

LISTED = 100  # the most shown on the Awaiting approval page


def _one_text_form(name, label, required, max_length):
    """A form of one required text: why it is sent back, why it cannot wait, why it is lifted."""
    field = forms.CharField(
        label=label,
        max_length=max_length,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": required},
    )
    return type(f"{name.title()}Form", (forms.Form,), {name: field})


SendBackForm = _one_text_form(
    "comment", "What must change", "Say what must change before you can approve it.", 2000
)
EmergencyForm = _one_text_form(
    "reason", "Why it cannot wait for approval", "Say why this cannot wait for approval.", 1000
)
ReviewLiftForm = _one_text_form(
    "reason", "Why you lift it", "Say why you are lifting this bulletin.", 1000
)


def _managed_or_404(user, pk):
    return get_object_or_404(permissions.manageable_bulletins(user), pk=pk)


def _approvable_or_403(user, pk):
    """For the approvers' pages: outside the user's bulletins a 404, their own a 403."""
    bulletin = _managed_or_404(user, pk)
    if not permissions.can_approve(user, bulletin):
        raise PermissionDenied
    return bulletin


def _steps(bulletin):
    return list(bulletin.approval_steps.select_related("by").order_by("at", "pk"))


def awaiting_keys(user):
    """What `awaiting_count` reads from the cache (for a `stamps.Batch`)."""
    agency = stamps.ALL_AGENCIES if user.is_superuser else user.agency_id
    return [stamps.agency_counter(agency), stamps.key("approvals", user.pk)]


def awaiting_count(user, now, *, batch=None):
    """The navigation's Awaiting approval count, kept under the agency's change counter (every
    approval step bumps it): on each page one cache round trip (none with a `batch` that read
    `awaiting_keys`), a query only after a change."""
    counter, entry_key = awaiting_keys(user)
    state = (user.unit_id, user.role, user.is_active, user.is_superuser)
    stamp, entry = stamps.kept([counter], state, entry_key, now, batch=batch)
    if entry is None:
        count = approval.awaiting_count(user)
        entry = stamps.keep(entry_key, stamp, now=now, until=stamps.until_next(now, []),
                            count=count)  # fmt: skip
    return entry["count"]


def preview_context(user, bulletin):
    """What the preview shows and offers about approval (for `views.bulletin_preview`)."""
    needed = bulletin.status == Bulletin.Status.DRAFT and approval.approval_needed(bulletin, user)
    awaiting = bulletin.approval == Bulletin.Approval.AWAITING
    return {
        "approval_needed": needed,
        "is_awaiting_approval": awaiting,
        "may_approve": awaiting and permissions.can_approve(user, bulletin),
        "approval_steps": _steps(bulletin),
        "send_back_form": SendBackForm(),
        "emergency_form": EmergencyForm(),
    }


def detail_context(user, bulletin):
    """Who wrote and who approved it, and the review of an emergency publication (for
    `views.bulletin_detail`); approval steps only for who may manage it."""
    reviewable = (
        bulletin.approval == Bulletin.Approval.EMERGENCY
        and bulletin.emergency_review_due_at is not None
    )
    may_approve = permissions.can_approve(user, bulletin)
    amendment = approval.pending_amendment(bulletin)
    steps = _steps(bulletin)
    return {
        "emergency_reviewable": reviewable,
        "may_review": reviewable and may_approve,
        "pending_amendment": amendment,
        "may_approve_amendment": amendment is not None
        and may_approve
        and amendment.by_id != user.pk,
        "lifted_on_review": next(
            (s for s in steps if s.action == ApprovalStep.Action.LIFTED), None
        ),
        "confirmed_step": next(
            (s for s in reversed(steps) if s.action == ApprovalStep.Action.CONFIRMED), None
        ),
        "send_back_form": SendBackForm(),
    }


@never_cache
@permission_required(permissions.AUTHOR, raise_exception=True)
@require_GET
def approvals(request):
    waiting = list(
        approval.awaiting(request.user)
        .select_related("issued_by")
        .prefetch_related("audience__unit")
        .order_by("emergency_review_due_at", "-pk")[:LISTED]
    )
    context = {
        "submitted": [b for b in waiting if b.approval == Bulletin.Approval.AWAITING],
        "emergencies": [b for b in waiting if b.approval == Bulletin.Approval.EMERGENCY],
        "zone": zone_name(),
        "now": timezone.now(),
    }
    return render(request, "bulletins/approvals.html", context)


def _refused(request, error, pk, to="bulletins:preview"):
    messages.error(request, " ".join(error.messages))
    return redirect(to, pk=pk)


@require_POST
def bulletin_submit(request, pk):
    bulletin = _managed_or_404(request.user, pk)
    try:
        approval.submit_for_approval(bulletin, by=request.user, now=timezone.now())
    except ValidationError as error:
        return _refused(request, error, bulletin.pk)
    messages.success(request, "Submitted for approval. The approvers have been told.")
    return redirect("bulletins:preview", pk=bulletin.pk)


@require_POST
@recent_sign_in_required
def bulletin_approve(request, pk):
    bulletin = _managed_or_404(request.user, pk)
    was_draft = bulletin.status == Bulletin.Status.DRAFT
    try:
        bulletin = approval.approve(bulletin, by=request.user, now=timezone.now())
    except ValidationError as error:
        return _refused(request, error, bulletin.pk, to="bulletins:detail")
    if not was_draft:
        messages.success(request, "Approved. The amendment is published.")
    elif bulletin.status == Bulletin.Status.SCHEDULED:
        local = timezone.localtime(bulletin.effective_at)
        messages.success(request, f"Approved. It takes effect {local:%a %d %b %H:%M}.")
    else:
        messages.success(request, "Approved. It is in force now.")
    return redirect("bulletins:detail", pk=bulletin.pk)


def _one_text_page(request, bulletin, form_class, template, act, *, done, to):
    """The pages of one required text (send back, emergency, lift on review): the form, then
    one service call `act(text)`; its refusal shows on the form, success goes to URL `to`."""
    form = form_class(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            act(*form.cleaned_data.values())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, done)
            return redirect(to)
    status = HTTPStatus.UNPROCESSABLE_ENTITY if form.is_bound else HTTPStatus.OK
    context = {"bulletin": bulletin, "form": form, "zone": zone_name()}
    return render(request, f"bulletins/{template}", context, status=status)


@require_http_methods(["GET", "POST"])
@recent_sign_in_required(allow_get=True)
def bulletin_send_back(request, pk):
    bulletin = _approvable_or_403(request.user, pk)
    return _one_text_page(
        request, bulletin, SendBackForm, "approval_send_back.html",
        lambda comment: approval.send_back(
            bulletin, by=request.user, now=timezone.now(), comment=comment
        ),
        done="Sent back. The author has been told what must change.",
        to=reverse("bulletins:approvals"),
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
@recent_sign_in_required(allow_get=True)
def bulletin_emergency(request, pk):
    bulletin = _managed_or_404(request.user, pk)
    if bulletin.status != Bulletin.Status.DRAFT:
        return redirect("bulletins:detail", pk=bulletin.pk)
    return _one_text_page(
        request, bulletin, EmergencyForm, "approval_emergency.html",
        lambda reason: approval.publish_in_emergency(
            bulletin, by=request.user, now=timezone.now(), reason=reason
        ),
        done="Published in an emergency. The approvers have been told to review it.",
        to=reverse("bulletins:detail", args=[pk]),
    )  # fmt: skip


@require_POST
@recent_sign_in_required
def bulletin_confirm(request, pk):
    bulletin = _managed_or_404(request.user, pk)
    try:
        approval.confirm_emergency(bulletin, by=request.user, now=timezone.now())
    except ValidationError as error:
        return _refused(request, error, bulletin.pk, to="bulletins:detail")
    messages.success(request, "Confirmed. It stays in force.")
    return redirect("bulletins:detail", pk=bulletin.pk)


@require_http_methods(["GET", "POST"])
@recent_sign_in_required(allow_get=True)
def bulletin_lift_on_review(request, pk):
    bulletin = _approvable_or_403(request.user, pk)
    return _one_text_page(
        request, bulletin, ReviewLiftForm, "approval_lift.html",
        lambda reason: approval.lift_on_review(
            bulletin, by=request.user, now=timezone.now(), reason=reason
        ),
        done="Lifted. Officers now see it as lifted, with your reason.",
        to=reverse("bulletins:detail", args=[pk]),
    )  # fmt: skip


def amend(request, bulletin, form, now):
    """The amend page's change (for `views.bulletin_amend`): a material change that needs
    approval waits for it, or, with an emergency reason, is made at once; anything else is
    made now. Returns what to tell the person."""
    reason, is_material = form.cleaned_data["reason"], form.cleaned_data["is_material"]
    if not authoring.amendment_needs_approval(bulletin, request.user, is_material=is_material):
        authoring.amend_bulletin(
            bulletin, by=request.user, now=now, reason=reason, is_material=is_material,
            **form.changes(),
        )  # fmt: skip
        return "Amended."
    emergency_reason = request.POST.get("emergency_reason", "").strip()
    if emergency_reason:
        approval.amend_in_emergency(
            bulletin, by=request.user, now=now, reason=reason,
            emergency_reason=emergency_reason[:1000], **form.changes(),
        )  # fmt: skip
        return "Amended in an emergency. The approvers have been told to review it."
    approval.propose_amendment(bulletin, by=request.user, now=now, reason=reason, **form.changes())
    return "Sent for approval. The change is made when an approver approves it."

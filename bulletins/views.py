import hashlib
from http import HTTPStatus

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bulletins import (
    approval_views,
    conflicts,
    permissions,
    quiz,
    response_views,
    template_pages,
    while_away,
)
from bulletins.caching import feed as kept_feed
from bulletins.diff import version_changes, version_history
from bulletins.forms import AmendForm, BulletinForm, HistoryFilterForm, LiftForm
from bulletins.models import Bulletin, Receipt, audience_members
from bulletins.services import attachments, authoring, clock, reading
from portal.decorators import rate_limited, recent_sign_in_required
from portal.local_time import zone_name
from portal.offline import is_offline_copy

FEED_POLL_SECONDS = 20
FEED_ITEMS = "bulletins/_feed_items.html"


def _feed_bulletins(user, now):
    return list(
        Bulletin.objects.in_force(now)
        .addressed_to(user)
        .with_reader_state(user)
        .urgent_first()
        .select_related("last_reaffirmed_by")
        .only(
            "id", "kind", "priority", "status", "title", "instruction", "effective_at",
            "expires_at", "version", "ack_version", "last_reaffirmed_at", "lifted_by_id",
            "last_reaffirmed_by__name", "is_exercise",
        )
    )  # fmt: skip


def _feed_etag(bulletins, now):
    """Changes when anything on the list changes, including what the clock decides."""
    parts = [
        f"{b.pk}:{b.version}:{b.my_opened_at is not None}:{b.my_ack_version}" for b in bulletins
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


@never_cache
@require_GET
def feed(request):
    """Served from the person's kept page while nothing on it changed (see `caching.feed`).
    Someone coming back first sees what changed while they were away (`while_away`)."""
    if while_away.should_show(request):
        return redirect("bulletins:while_away")
    now = timezone.now()

    def build():
        items = _render_feed_items(request, now)
        context = {
            "feed_items": items,
            "to_review": _awaiting_review(request.user, now),
            "now": now,
            "csrf_token": get_token(request),
        }
        return items, render_to_string("bulletins/feed.html", context, request)

    return HttpResponse(kept_feed.page(request, now, build))


def _render_feed_items(request, now):
    bulletins = _feed_bulletins(request.user, now)
    context = {
        "bulletins": bulletins,
        "now": now,
        "etag": _feed_etag(bulletins, now),
        "poll_seconds": FEED_POLL_SECONDS,
        "ages_later": True,
    }
    return {"etag": context["etag"], "html": render_to_string(FEED_ITEMS, context, request)}


def _awaiting_review(user, now):
    """Until-further-notice orders this supervisor must re-affirm or lift."""
    if not user.has_perm(permissions.AUTHOR):
        return []
    due = permissions.manageable_bulletins(user).in_force(now)
    return list(due.filter(review_requested_at__isnull=False).order_by("review_requested_at")[:20])


@require_POST
def bulletin_reaffirm(request, pk):
    bulletin = _managed_or_404(request.user, pk)
    try:
        clock.reaffirm_bulletin(bulletin, by=request.user, now=timezone.now())
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Re-affirmed. It stays in force; the next review is due later.")
    return redirect("bulletins:detail", pk=bulletin.pk)


@never_cache
@require_GET
def feed_items(request):
    """The polled part of the feed: 204 when nothing changed since `?etag=` (or 304 for an
    `If-None-Match`), usually answered from the kept page's items."""
    now = timezone.now()
    items = kept_feed.items(request.user, now, lambda: _render_feed_items(request, now))
    if request.GET.get("etag") == items["etag"]:
        return HttpResponse(status=HTTPStatus.NO_CONTENT)
    if request.headers.get("if-none-match") == f'"{items["etag"]}"':
        return HttpResponse(status=HTTPStatus.NOT_MODIFIED)
    response = HttpResponse(items["html"])
    response["ETag"] = f'"{items["etag"]}"'
    return response


def _visible_or_404(user, pk):
    queryset = permissions.visible_bulletins(user).select_related(
        "issued_by", "lifted_by", "last_reaffirmed_by"
    )
    return get_object_or_404(queryset, pk=pk)


def _managed_or_404(user, pk):
    return get_object_or_404(permissions.manageable_bulletins(user), pk=pk)


def _supersede_links(user, bulletin):
    """What `bulletin` supersedes and what published bulletins supersede it, as far as `user`
    may open them (one query each): a page never links to what its reader cannot see."""
    visible = permissions.visible_bulletins(user).only("pk", "title", "status").order_by("pk")
    return {
        "supersedes": list(visible.filter(superseded_by=bulletin.pk)),
        "superseded_by": list(visible.published().filter(supersedes=bulletin.pk)),
    }


@never_cache
@require_GET
def bulletin_detail(request, pk):
    now = timezone.now()
    user = request.user
    bulletin = _visible_or_404(user, pk)
    if bulletin.status == Bulletin.Status.DRAFT:
        return redirect("bulletins:preview", pk=bulletin.pk)
    versions = list(bulletin.versions.select_related("created_by"))
    current = versions[-1]
    receipts = {r.version_id: r for r in Receipt.objects.filter(bulletin=bulletin, user=user)}
    is_reader = bulletin.is_addressed_to(user)
    # The device's offline copy is not its reader opening it (portal.offline).
    if is_reader and current.pk not in receipts and not is_offline_copy(request):
        reading.record_open(bulletin, current, user=user, now=now)
    reading.record_restricted_view(
        bulletin, user=user, request=request, version=current.number, now=now
    )
    acknowledged = [v for v in versions if receipts.get(v.pk) and receipts[v.pk].acknowledged_at]
    last_acked = acknowledged[-1] if acknowledged else None
    needs_ack = (
        is_reader
        and bulletin.requires_acknowledgement
        and bulletin.state_at(now) == Bulletin.Status.IN_FORCE
        and (last_acked is None or last_acked.number < bulletin.ack_version)
    )
    changes = version_changes(last_acked, current) if needs_ack and last_acked else []
    context = {
        "bulletin": bulletin,
        "version": current,
        "versions": versions,
        "state": bulletin.state_at(now),
        "now": now,
        "is_reader": is_reader,
        "needs_ack": needs_ack,
        "last_acked": last_acked,
        "my_receipt": receipts.get(last_acked.pk) if last_acked else None,
        "changes": changes,
        "history": version_history(versions),
        "zone": zone_name(),
        "statement": reading.statement_for(current.statement, bulletin.agency_id),
        "can_manage": permissions.can_manage(user, bulletin),
        "can_track": user.has_perm(permissions.VIEW_COVERAGE)
        and permissions.trackable_bulletins(user).filter(pk=bulletin.pk).exists(),
        "attachments": list(bulletin.attachments.all()),
        "audience": list(bulletin.audience.select_related("unit")),
        **_supersede_links(user, bulletin),
        **response_views.reader_context(
            user, bulletin, is_reader=is_reader, state=bulletin.state_at(now)
        ),
        **approval_views.detail_context(user, bulletin),
    }
    return render(request, "bulletins/bulletin_detail.html", context)


@require_POST
@rate_limited("acknowledge", setting="ACKNOWLEDGE_RATE_PER_MINUTE")
def bulletin_acknowledge(request, pk):
    """Acknowledge; with the answers of a check of understanding (`check`, `answer-1`, ...),
    record the attempt first and acknowledge only when every answer is right."""
    now, version_number = timezone.now(), _as_number(request.POST.get("version", ""))
    try:
        if request.POST.get("check") and version_number is not None:
            passed, _ = reading.answer_and_acknowledge(
                pk, user=request.user, version_number=version_number,
                answers=quiz.posted_answers(request.POST), now=now, request=request,
            )  # fmt: skip
            if not passed:
                messages.error(request, quiz.NOT_QUITE)  # back to the top: message, text
                return _back_to_the_bulletin(request)
        else:
            reading.acknowledge(
                pk, user=request.user, version_number=version_number, now=now, request=request
            )
    except Bulletin.DoesNotExist:
        raise Http404 from None
    except ValidationError as error:
        if getattr(error, "code", None) == "version":
            return HttpResponse(
                error.message,
                status=HTTPStatus.UNPROCESSABLE_ENTITY,
                content_type="text/plain; charset=utf-8",
            )
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Acknowledged. Thank you.")
    return _back_to_the_bulletin(request)


def _back_to_the_bulletin(request):
    """The redirect from Acknowledge to its bulletin: the page's address is the action's without
    its last part (bulletins/<pk>/acknowledge -> bulletins/<pk>/). Taken from the request, not
    reversed from the pattern: reversing cost 3% of an acknowledgement's instructions."""
    return HttpResponseRedirect(request.path.removesuffix("acknowledge"))


def _as_number(text):
    try:
        return int(text)
    except ValueError:
        return None


def _save_draft_from(form, request, now, bulletin=None):
    draft = authoring.save_draft(
        by=request.user,
        targets=form.cleaned_data["targets"],
        now=now,
        bulletin=bulletin,
        **form.draft_fields(),
    )
    uploads = form.cleaned_data.get("attachments") or []
    if uploads:
        attachments.attach_files(
            draft, uploads, form.cleaned_data["attachment_types"], by=request.user, now=now
        )
    return draft


def _form_data(request):
    """(data, files) for a form: bound on every POST, even an empty one, so it shows errors."""
    if request.method == "POST":
        return request.POST, request.FILES
    return None, None


def _render_form(request, form, bulletin=None, status=HTTPStatus.OK):
    context = {"form": form, "bulletin": bulletin}
    if bulletin is None:  # New bulletin: Start from a template
        context["templates"] = list(template_pages.offered_templates(request.user))
    return render(request, "bulletins/bulletin_form.html", context, status=status)


@permission_required(permissions.AUTHOR, raise_exception=True)
@require_http_methods(["GET", "POST"])
def bulletin_create(request):
    now = timezone.now()
    chosen = request.GET.get("template") if request.method == "GET" else None
    version = template_pages.chosen_version(request.user, chosen) if chosen else None
    form = BulletinForm(*_form_data(request), user=request.user, now=now, template_version=version)
    if request.method == "POST":
        if not form.is_valid():
            return _render_form(request, form, status=HTTPStatus.UNPROCESSABLE_ENTITY)
        try:
            draft = _save_draft_from(form, request, now)
        except ValidationError as error:
            form.add_error(None, error)
            return _render_form(request, form, status=HTTPStatus.UNPROCESSABLE_ENTITY)
        return redirect("bulletins:preview", pk=draft.pk)
    return _render_form(request, form)


@require_http_methods(["GET", "POST"])
def bulletin_edit(request, pk):
    now = timezone.now()
    bulletin = _managed_or_404(request.user, pk)
    if bulletin.status != Bulletin.Status.DRAFT:
        return redirect("bulletins:detail", pk=bulletin.pk)
    form = BulletinForm(*_form_data(request), instance=bulletin, user=request.user, now=now)
    if request.method == "POST":
        if not form.is_valid():
            return _render_form(request, form, bulletin, HTTPStatus.UNPROCESSABLE_ENTITY)
        try:
            _save_draft_from(form, request, now, bulletin=bulletin)
        except ValidationError as error:
            form.add_error(None, error)
            return _render_form(request, form, bulletin, HTTPStatus.UNPROCESSABLE_ENTITY)
        return redirect("bulletins:preview", pk=bulletin.pk)
    return _render_form(request, form, bulletin)


@never_cache
@require_GET
def bulletin_preview(request, pk):
    now = timezone.now()
    bulletin = _managed_or_404(request.user, pk)
    context = {
        "bulletin": bulletin,
        "now": now,
        "state": bulletin.state_at(now),
        "reach": bulletin.members().count(),
        "zone": zone_name(),
        "audience": list(bulletin.audience.select_related("unit")),
        "attachments": list(bulletin.attachments.all()),
        "statement": reading.statement_for(bulletin.statement, bulletin.agency_id),
        "higher_orders": conflicts.higher_orders(bulletin, now, viewer=request.user),
        **_supersede_links(request.user, bulletin),
        **approval_views.preview_context(request.user, bulletin),
    }
    return render(request, "bulletins/bulletin_preview.html", context)


@require_POST
@recent_sign_in_required
def bulletin_publish(request, pk):
    now = timezone.now()
    bulletin = _managed_or_404(request.user, pk)
    try:
        bulletin = authoring.publish_bulletin(bulletin, by=request.user, now=now)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("bulletins:preview", pk=bulletin.pk)
    if bulletin.status == Bulletin.Status.SCHEDULED:
        local = timezone.localtime(bulletin.effective_at)
        messages.success(request, f"Scheduled. It takes effect {local:%a %d %b %H:%M}.")
    else:
        messages.success(request, "Published. It is in force now.")
    return redirect("bulletins:detail", pk=bulletin.pk)


@require_http_methods(["GET", "POST"])
def bulletin_amend(request, pk):
    now = timezone.now()
    bulletin = _managed_or_404(request.user, pk)
    if bulletin.state_at(now) not in Bulletin.LIVE_STATUSES:
        messages.error(request, "Only a bulletin that is scheduled or in force can be amended.")
        return redirect("bulletins:detail", pk=bulletin.pk)
    form = AmendForm(_form_data(request)[0], bulletin=bulletin, now=now)
    if request.method == "POST" and form.is_valid():
        try:
            done = approval_views.amend(request, bulletin, form, now)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, done)
            return redirect("bulletins:detail", pk=bulletin.pk)
    status = HTTPStatus.UNPROCESSABLE_ENTITY if form.is_bound else HTTPStatus.OK
    return render(
        request,
        "bulletins/bulletin_amend.html",
        {"form": form, "bulletin": bulletin},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@recent_sign_in_required(allow_get=True)
def bulletin_lift(request, pk):
    now = timezone.now()
    bulletin = _managed_or_404(request.user, pk)
    form = LiftForm(_form_data(request)[0], now=now)
    if request.method == "POST" and form.is_valid():
        reason, lift_at = form.cleaned_data["reason"], form.cleaned_data["lift_at"]
        try:
            if lift_at:
                clock.schedule_lift(bulletin, by=request.user, now=now, at=lift_at, reason=reason)
            else:
                authoring.lift_bulletin(bulletin, by=request.user, now=now, reason=reason)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if lift_at:
                local = timezone.localtime(lift_at)
                messages.success(request, f"It will be lifted {local:%a %d %b %H:%M}.")
            else:
                messages.success(
                    request, "Lifted. Officers now see it as lifted, with your reason."
                )
            return redirect("bulletins:detail", pk=bulletin.pk)
    status = HTTPStatus.UNPROCESSABLE_ENTITY if form.is_bound else HTTPStatus.OK
    return render(
        request, "bulletins/bulletin_lift.html", {"form": form, "bulletin": bulletin}, status=status
    )


@require_GET
def attachment_download(request, pk, attachment_pk):
    bulletin = _visible_or_404(request.user, pk)
    attachment = get_object_or_404(bulletin.attachments, pk=attachment_pk)
    attachments.record_download(attachment, by=request.user, request=request)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.name,
        content_type=attachment.content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@require_GET
def history(request):
    now = timezone.now()
    form = HistoryFilterForm(request.GET or None)
    bulletins = permissions.visible_bulletins(request.user).published().ended(now)
    if form.is_valid():
        bulletins = _filter_history(bulletins, form.cleaned_data)
    bulletins = bulletins.select_related("lifted_by").order_by("-ended_at", "-expires_at", "-id")
    page = list(bulletins[:100])
    return render(request, "bulletins/history.html", {"form": form, "bulletins": page, "now": now})


def _filter_history(bulletins, filters):
    if filters["kind"]:
        bulletins = bulletins.filter(kind=filters["kind"])
    if filters["state"] == "lifted":
        bulletins = bulletins.filter(status=Bulletin.Status.LIFTED)
    elif filters["state"] == "expired":
        bulletins = bulletins.exclude(status=Bulletin.Status.LIFTED)
    if filters["q"]:
        bulletins = bulletins.search(filters["q"])
    return bulletins


@require_POST
def audience_count(request):
    """How many people the audience in the form reaches (htmx, while writing). A POST of the
    audience fields alone (`BulletinForm.AUDIENCE_FIELDS`): the draft's text stays out of URLs
    and access logs."""
    if not request.user.has_perm(permissions.AUTHOR):
        raise PermissionDenied
    form = BulletinForm(request.POST, user=request.user)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    targets = data.get("targets") or []
    classes = [c for c in ("sworn", "auxiliary", "civilian") if data.get(f"to_{c}")]
    reach = audience_members(
        targets, classes=classes, supervisors_only=bool(data.get("supervisors_only"))
    ).count()
    return render(request, "bulletins/_audience_count.html", {"reach": reach})

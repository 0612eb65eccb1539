"""The people pages an agency admin uses every day: the list of the people in their scope, and
the actions on a person's record (move, change role, leave, unlock, deactivate, reactivate,
send a link to set a password), each behind a confirmation page; adding a person and editing
their details. The record itself (`bulletins:person`) shows what they were told, so it
lives with the bulletins.

Managing people needs MANAGE_PEOPLE (403 without it); a person outside the scope, or a
superuser for anyone but a superuser, is not found (404). Every change wants a recent sign-in
and goes through `portal.people`, which audits it."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from portal import people
from portal.forms import (
    AddPersonForm,
    ChangeRoleForm,
    MovePersonForm,
    PeopleFilterForm,
    PersonActionForm,
    PersonDetailsForm,
)
from portal.scope import MANAGE_PEOPLE
from portal.sessions import require_recent_sign_in

PAGE_SIZE = 50


def managing_people(view):
    """A page that changes people: never cached, GET (the form) or POST, MANAGE_PEOPLE or 403."""
    for decorator in (
        permission_required(MANAGE_PEOPLE, raise_exception=True),
        require_http_methods(["GET", "POST"]),
        never_cache,
    ):
        view = decorator(view)
    return view


@never_cache
@require_GET
@permission_required(MANAGE_PEOPLE, raise_exception=True)
def people_list(request):
    """Everyone I may manage, searched and filtered, 50 a page, in a fixed number of queries."""
    form = PeopleFilterForm(request.GET or None, user=request.user)
    found = people.with_lock_state(people.manageable_people(request.user), now=timezone.now())
    found = form.filter(found.select_related("unit")).order_by("name", "pk")
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    filtered = form.is_bound and any(form.data.get(name) for name in form.fields if name != "q")
    context = {"form": form, "page": page, "filtered": filtered or bool(form.errors)}
    return render(request, "people/person_list.html", context)


def _confirmed(request, pk, *, form_class, act, page):
    """GET: the confirmation page. POST (fresh sign-in): `act(person, cleaned_data)` returns
    the message shown back on the record; a refusal is an error on the page, nothing changed.
    `page(person)` gives the page's title, explanation and button."""
    person = get_object_or_404(people.manageable_people(request.user).select_related("unit"), pk=pk)
    data = request.POST if request.method == "POST" else None
    form = form_class(data, person=person, by=request.user)
    if request.method == "POST":
        require_recent_sign_in(request)
        if form.is_valid():
            try:
                message = act(person, form.cleaned_data)
            except ValidationError as error:
                person.refresh_from_db()  # a refused change may have been half made in memory
                form.add_error(form.error_field, error)
            else:
                messages.success(request, message)
                return redirect("bulletins:person", pk=person.pk)
    texts = page(person)
    texts["title"] = texts["title"].format(name=person.name)
    return render(request, "people/person_action.html", {"person": person, "form": form, **texts})


@managing_people
def person_move(request, pk):
    def act(person, data):
        people.move_person(person, data["unit"], by=request.user, request=request)
        return f"{person.name} moved to {data['unit'].name}."

    def page(person):
        return {
            "title": "Move {name} to another unit",
            "button": "Move",
            "explain": "Their bulletins follow their new unit from now on.",
        }

    return _confirmed(request, pk, form_class=MovePersonForm, act=act, page=page)


@managing_people
def person_role(request, pk):
    def act(person, data):
        people.change_role(person, data["role"], by=request.user, request=request)
        return f"{person.name} is now {person.get_role_display().lower()}."

    def page(person):
        return {
            "title": "Change the role of {name}",
            "button": "Change role",
            "explain": "They are signed out everywhere and sign in again with the new role.",
        }

    return _confirmed(request, pk, form_class=ChangeRoleForm, act=act, page=page)


@managing_people
def person_leave(request, pk):
    """One page for both ways: "Put on leave" or "Back from leave", whichever applies now."""

    def act(person, data):
        on_leave = not person.is_on_leave
        people.set_on_leave(person, on_leave, by=request.user, request=request)
        return f"{person.name} is {'on leave' if on_leave else 'back from leave'}."

    def page(person):
        if person.is_on_leave:
            return {
                "title": "Mark {name} back from leave",
                "button": "Back from leave",
                "explain": "Reminders start again for what they have not acknowledged.",
            }
        return {
            "title": "Put {name} on leave",
            "button": "Put on leave",
            "explain": "No reminders while they are on leave; what they must acknowledge "
            "waits for their return.",
        }

    return _confirmed(request, pk, form_class=PersonActionForm, act=act, page=page)


@managing_people
def person_unlock(request, pk):
    def act(person, data):
        people.unlock_person(person, by=request.user, now=timezone.now(), request=request)
        return f"{person.name} can sign in again."

    def page(person):
        return {
            "title": "Unlock the sign-in of {name}",
            "button": "Unlock",
            "explain": "Their sign-in was locked after too many failed attempts. Unlock it "
            "once you know the attempts were theirs.",
        }

    return _confirmed(request, pk, form_class=PersonActionForm, act=act, page=page)


@managing_people
def person_deactivate(request, pk):
    def act(person, data):
        people.deactivate_person(person, by=request.user, request=request)
        return f"{person.name} is deactivated."

    def page(person):
        return {
            "title": "Deactivate {name}",
            "button": "Deactivate",
            "danger": True,
            "explain": "They are signed out and can no longer sign in. Nothing they did is "
            "deleted: their acknowledgements stay on record.",
        }

    return _confirmed(request, pk, form_class=PersonActionForm, act=act, page=page)


def _save_details(request, form, person, *, changed):
    """Save `form`'s person through `people.save_person`; a badge taken meanwhile is the
    badge's error (nothing saved), else None."""
    try:
        return people.save_person(form.save(commit=False), by=request.user, changed=changed,
                                  request=request)  # fmt: skip
    except ValidationError as error:
        if person is not None:
            person.refresh_from_db()
        form.add_error("badge", error)
        return None


@managing_people
def person_add(request):
    """A new person in one of my units, with a role no higher than mine; by default they are
    emailed a link to set their own password."""
    form = AddPersonForm(request.POST or None, by=request.user)
    if request.method == "POST":
        require_recent_sign_in(request)
        if form.is_valid() and (person := _add(request, form)) is not None:
            return redirect("bulletins:person", pk=person.pk)
    return render(request, "people/person_form.html", {"form": form, "person": None})


def _add(request, form):
    with transaction.atomic():
        changed = [name for name in form.Meta.fields if name in form.cleaned_data]
        person = _save_details(request, form, None, changed=changed)
        if person is None:
            return None
        if form.cleaned_data["send_link"]:
            people.send_password_link(person, by=request.user, request=request)
    if form.cleaned_data["send_link"]:
        messages.success(
            request, f"{person.name} added. A link to set a password was sent to {person.email}."
        )
    else:
        messages.success(
            request,
            f"{person.name} added. They cannot sign in until they set a password: use "
            "\u201cSend a link to set a password\u201d below when you are ready.",
        )
    return person


@managing_people
def person_edit(request, pk):
    """Name, email, badge, rank, class and email wishes; the other changes are actions."""
    person = get_object_or_404(people.manageable_people(request.user).select_related("unit"), pk=pk)
    form = PersonDetailsForm(request.POST or None, instance=person, by=request.user)
    if request.method == "POST":
        require_recent_sign_in(request)
        if form.is_valid():
            if not form.has_changed():
                messages.info(request, "Nothing changed.")
                return redirect("bulletins:person", pk=person.pk)
            if _save_details(request, form, person, changed=form.changed_data) is not None:
                messages.success(request, f"Details of {person.name} saved.")
                return redirect("bulletins:person", pk=person.pk)
        person.refresh_from_db()  # the form changed the instance in memory
    return render(request, "people/person_form.html", {"form": form, "person": person})


@managing_people
def person_password_link(request, pk):
    def act(person, data):
        people.send_password_link(person, by=request.user, request=request)
        return f"A link to set a password was sent to {person.email}. It works for a day."

    def page(person):
        return {
            "title": "Send {name} a link to set a password",
            "button": "Send the link",
            "explain": f"An email goes to {person.email} with a link that works for a day. "
            "Once they set a password, it replaces the old one. Nobody else sees it.",
        }

    return _confirmed(request, pk, form_class=PersonActionForm, act=act, page=page)


@managing_people
def person_reactivate(request, pk):
    def act(person, data):
        people.reactivate_person(person, by=request.user, request=request)
        return f"{person.name} is active again and can sign in."

    def page(person):
        return {
            "title": "Reactivate {name}",
            "button": "Reactivate",
            "explain": "They can sign in again with their old password, if they had one; "
            "otherwise send them a link to set a password.",
        }

    return _confirmed(request, pk, form_class=PersonActionForm, act=act, page=page)

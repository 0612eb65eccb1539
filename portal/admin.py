"""Admin for people and units. People are never deleted, only deactivated; every change goes
through `portal.people`, which keeps a person's agency in step with their unit."""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from treebeard.admin import TreeAdmin
from treebeard.forms import movenodeform_factory

from portal import lockout, people
from portal.forms import PersonFormMixin
from portal.models import Unit, User
from portal.scope import is_in_scope
from portal.scope import scope_units as units_in_scope
from portal.sessions import require_recent_sign_in, signed_in_recently

PERSON_FIELDS = ("email", "name", "badge", "rank", "member_class", "role", "unit")


def may_manage_people(request):
    """The Django admin is for superusers only: agency admins manage people in the portal's own
    pages (portal.people_views), which keep to their scope."""
    return request.user.is_active and request.user.is_superuser


def superusers_only(request):
    """`admin.site.has_permission`: a signed-in person who is not a superuser is refused (403)
    rather than sent to the sign-in page, which would send them straight back."""
    if request.user.is_authenticated and not request.user.is_superuser:
        raise PermissionDenied
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = superusers_only


class ScopedAdmin:
    """People and units, for superusers (`may_manage_people`), within the scope that
    `in_scope(user, obj)` says for one object. Nothing is ever deleted."""

    def in_scope(self, user, obj):
        raise NotImplementedError

    def has_module_permission(self, request):
        return may_manage_people(request)

    def has_view_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_add_permission(self, request):
        return may_manage_people(request)

    def has_change_permission(self, request, obj=None):
        return may_manage_people(request) and (obj is None or self.in_scope(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        return False


class PersonAddForm(PersonFormMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = PERSON_FIELDS


class PersonChangeForm(PersonFormMixin, UserChangeForm):
    class Meta:
        model = User
        fields = (*PERSON_FIELDS, "password", "is_active", "is_on_leave", "wants_email")
        field_classes = {}


@admin.register(User)
class PersonAdmin(ScopedAdmin, DjangoUserAdmin):
    form = PersonChangeForm
    add_form = PersonAddForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Member", {"fields": ("name", "badge", "rank", "member_class", "role", "unit")}),
        ("Availability", {"fields": ("is_on_leave", "wants_email")}),
        (
            "Access",
            {"fields": ("is_active", "sign_in_state", "is_staff", "is_superuser", "agency")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": PERSON_FIELDS}),)
    readonly_fields = (
        "is_staff", "is_superuser", "agency", "last_login", "date_joined", "sign_in_state",
    )  # fmt: skip
    list_display = ("name", "email", "badge", "rank", "member_class", "role", "unit", "is_active")
    list_filter = (
        ("unit", admin.RelatedOnlyFieldListFilter),
        "member_class",
        "role",
        "is_active",
        "is_on_leave",
    )
    list_select_related = ("unit",)
    search_fields = ("name", "email", "badge")
    ordering = ("name",)
    filter_horizontal = ()
    actions = ("deactivate", "unlock")
    change_list_template = "admin/portal/user/change_list.html"

    # Changing people (roles above all) wants a sign-in within the last 5 minutes.
    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            require_recent_sign_in(request)
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            require_recent_sign_in(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        # Whoever sets a password can sign in as that person: a fresh sign-in, and an audit
        # event. Superusers and people outside the scope are not found (404).
        if not signed_in_recently(request):
            # Not allauth's suspended request: that would keep the new password in the session.
            query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('account_reauthenticate')}?{query}")
        person = self.get_object(request, unquote(id))
        before = person.password if person is not None else None
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if person is not None and request.method == "POST":
                person.refresh_from_db(fields=["password"])
                if person.password != before:
                    people.record_password_set(person, by=request.user, request=request)
        return response

    @admin.display(description="sign-in")
    def sign_in_state(self, person):
        if lockout.locked_logins([person.email], now=timezone.now()):
            return "Locked after failed attempts: use the Unlock action on the list of people."
        return "Open"

    def get_urls(self):
        upload = self.admin_site.admin_view(self.import_roster_view)
        return [path("import/", upload, name="portal_user_import"), *super().get_urls()]

    def get_queryset(self, request):
        return people.manageable_people(request.user).select_related("unit")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if not request.user.is_superuser and "unit" in form.base_fields:
            # Someone without a unit would be outside every agency: no agency admin's to make.
            form.base_fields["unit"].required = True
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "unit":
            kwargs["queryset"] = units_in_scope(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def in_scope(self, user, obj):
        return people.may_manage_person(user, obj)

    def save_model(self, request, obj, form, change):
        people.save_person(obj, by=request.user, changed=form.changed_data, request=request)

    @admin.action(description="Deactivate selected people")
    def deactivate(self, request, queryset):
        count = people.deactivate_people(queryset, by=request.user, request=request)
        self.message_user(request, f"{count} people deactivated.", messages.SUCCESS)

    @admin.action(description="Unlock selected people's sign-in")
    def unlock(self, request, queryset):
        now = timezone.now()
        count = lockout.unlock_people(queryset, by=request.user, now=now, request=request)
        self.message_user(request, f"{count} account(s) unlocked.", messages.SUCCESS)

    def import_roster_view(self, request):
        """The import moved to the portal's own page (issue 19)."""
        return redirect("people_import")


@admin.register(Unit)
class UnitAdmin(ScopedAdmin, TreeAdmin):
    form = movenodeform_factory(Unit)
    list_display = ("name", "kind")
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(pk__in=units_in_scope(request.user))

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if request.user.is_superuser:
            return form
        scope = units_in_scope(request.user)

        class ScopedMoveNodeForm(form):
            """Only units in the admin's agency as a reference, and no new agency root."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                ref_node = self.fields["treebeard_ref_node"]
                ref_node.queryset = ref_node.queryset.filter(pk__in=scope)
                ref_node.required = True

        return ScopedMoveNodeForm

    def in_scope(self, user, obj):
        return is_in_scope(user, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        people.resync_agencies(obj)

    def move_node(self, request):
        ids = [request.POST.get(name, "") for name in ("node", "target")]
        units = Unit.objects.filter(pk__in=[pk for pk in ids if pk.isdigit()])
        if not all(is_in_scope(request.user, unit) for unit in units):
            raise PermissionDenied
        with transaction.atomic():
            response = super().move_node(request)
            node = units.filter(pk=ids[0]).first() if ids[0].isdigit() else None
            if response.status_code == 200 and node is not None:
                return self._resync_after_move(request, node, response)
        return response

    def _resync_after_move(self, request, node, response):
        try:
            people.resync_agencies(node)
        except ValidationError as error:
            transaction.set_rollback(True)
            self.message_user(request, error.messages[0], messages.ERROR)
            return HttpResponseBadRequest(error.messages[0])
        return response

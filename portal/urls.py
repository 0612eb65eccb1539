from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from portal import audit_views, email_addresses, views

admin.site.site_header = "Officer Safety Bulletins - administration"

audit_patterns = (
    [
        path("", audit_views.audit_events, name="events"),
        path("export.csv", audit_views.audit_export, name="export"),
    ],
    "audit",
)

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/email-preferences/", views.email_preferences, name="email_preferences"),
    # Addresses are managed by admins and the roster: allauth's email pages are shut.
    path("accounts/email/", email_addresses.email_managed_by_admins),
    path("accounts/confirm-email/", email_addresses.email_managed_by_admins),
    re_path(r"^accounts/confirm-email/(?P<key>[-:\w]+)/$", email_addresses.email_managed_by_admins),
    path("accounts/", include("allauth.urls")),
    # The admin has no sign-in of its own: it goes through allauth (MFA, rate limits, lockout).
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="account_login", query_string=True),
        name="admin_login",
    ),
    path("admin/", admin.site.urls),
    path("audit/", include(audit_patterns)),
    path("api/", include("bulletins.api.urls")),
    path("", include("bulletins.urls")),
]

handler500 = "portal.views.server_error"

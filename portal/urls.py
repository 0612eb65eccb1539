from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from portal import audit_views, email_addresses, people_views, roster_views, tour_views, views
from portal.offline import manifest, offline_page, service_worker

admin.site.site_header = "Officer Safety Bulletins - administration"

audit_patterns = (
    [
        path("", audit_views.audit_events, name="events"),
        path("export.csv", audit_views.audit_export, name="export"),
    ],
    "audit",
)

urlpatterns = [
    # First: the officers' pages and actions (the feed, a bulletin, Acknowledge) are most of the
    # requests at shift change, and Django tries the patterns in order.
    path("", include("bulletins.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("manifest.webmanifest", manifest, name="manifest"),
    path("sw.js", service_worker, name="service_worker"),
    path("offline/", offline_page, name="offline"),
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
    path("people/", people_views.people_list, name="people"),
    path("people/import/", roster_views.people_import, name="people_import"),
    path("people/units/", roster_views.people_units, name="people_units"),
    path("people/units/<int:pk>/tours", tour_views.unit_tours, name="unit_tours"),
    path("people/new", people_views.person_add, name="person_add"),
    path("people/<int:pk>/edit", people_views.person_edit, name="person_edit"),
    path(
        "people/<int:pk>/password-link",
        people_views.person_password_link,
        name="person_password_link",
    ),
    path("people/<int:pk>/reactivate", people_views.person_reactivate, name="person_reactivate"),
    path("people/<int:pk>/move", people_views.person_move, name="person_move"),
    path("people/<int:pk>/role", people_views.person_role, name="person_role"),
    path("people/<int:pk>/leave", people_views.person_leave, name="person_leave"),
    path("people/<int:pk>/unlock", people_views.person_unlock, name="person_unlock"),
    path("people/<int:pk>/deactivate", people_views.person_deactivate, name="person_deactivate"),
    path("api/", include("bulletins.api.urls")),
]

handler500 = "portal.views.server_error"

from django.contrib import admin
from django.urls import include, path

from portal import views

admin.site.site_header = "Officer Safety Bulletins - administration"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("bulletins.urls")),
]

from django.urls import path

from bulletins import views

app_name = "bulletins"

urlpatterns = [
    path("", views.feed, name="feed"),
    path("feed/items", views.feed_items, name="feed_items"),
    path("history/", views.history, name="history"),
    path("bulletins/new", views.bulletin_create, name="create"),
    path("bulletins/audience-count", views.audience_count, name="audience_count"),
    path("bulletins/<int:pk>/", views.bulletin_detail, name="detail"),
    path("bulletins/<int:pk>/edit", views.bulletin_edit, name="edit"),
    path("bulletins/<int:pk>/preview", views.bulletin_preview, name="preview"),
    path("bulletins/<int:pk>/publish", views.bulletin_publish, name="publish"),
    path("bulletins/<int:pk>/amend", views.bulletin_amend, name="amend"),
    path("bulletins/<int:pk>/lift", views.bulletin_lift, name="lift"),
    path("bulletins/<int:pk>/reaffirm", views.bulletin_reaffirm, name="reaffirm"),
    path("bulletins/<int:pk>/acknowledge", views.bulletin_acknowledge, name="acknowledge"),
    path(
        "bulletins/<int:pk>/attachments/<int:attachment_pk>",
        views.attachment_download,
        name="attachment",
    ),
]

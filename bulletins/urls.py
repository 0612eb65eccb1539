from django.urls import path

from bulletins import dashboards, drafts, exercises, feeds, person_pages, template_pages, views
from bulletins.api import profile

app_name = "bulletins"

urlpatterns = [
    path("", views.feed, name="feed"),
    path("feed/items", views.feed_items, name="feed_items"),
    path("history/", views.history, name="history"),
    path("bulletins/new", views.bulletin_create, name="create"),
    path("bulletins/drafts/", drafts.drafts, name="drafts"),
    path("bulletins/audience-count", views.audience_count, name="audience_count"),
    path("bulletins/templates/", template_pages.template_list, name="templates"),
    path("bulletins/templates/new", template_pages.template_create, name="template_create"),
    path("bulletins/templates/<int:pk>/edit", template_pages.template_edit, name="template_edit"),
    path(
        "bulletins/templates/<int:pk>/archive",
        template_pages.template_archive,
        name="template_archive",
    ),
    path("bulletins/<int:pk>/", views.bulletin_detail, name="detail"),
    path("bulletins/<int:pk>/edit", views.bulletin_edit, name="edit"),
    path("bulletins/<int:pk>/preview", views.bulletin_preview, name="preview"),
    path("bulletins/<int:pk>/publish", views.bulletin_publish, name="publish"),
    path("bulletins/<int:pk>/amend", views.bulletin_amend, name="amend"),
    path("bulletins/<int:pk>/lift", views.bulletin_lift, name="lift"),
    path("bulletins/<int:pk>/reaffirm", views.bulletin_reaffirm, name="reaffirm"),
    path("bulletins/<int:pk>/acknowledge", views.bulletin_acknowledge, name="acknowledge"),
    path("coverage/", dashboards.coverage_overview, name="overview"),
    path("coverage/exercises/", exercises.exercises, name="exercises"),
    path("bulletins/<int:pk>/coverage", dashboards.bulletin_coverage, name="coverage"),
    path("bulletins/<int:pk>/outstanding", dashboards.bulletin_outstanding, name="outstanding"),
    path("bulletins/<int:pk>/remind", dashboards.bulletin_remind, name="remind"),
    path("bulletins/<int:pk>/recipients.csv", dashboards.recipients_csv, name="recipients_csv"),
    path(
        "bulletins/<int:pk>/evidence/<int:user_pk>",
        dashboards.evidence_record,
        name="evidence",
    ),
    path("people/<int:pk>/", person_pages.person_record, name="person"),
    path(
        "bulletins/<int:pk>/attachments/<int:attachment_pk>",
        views.attachment_download,
        name="attachment",
    ),
    path("bulletins/<int:pk>/cap/<int:number>.xml", feeds.cap_alert, name="cap_alert"),
    path("bulletins/<int:pk>/cap/cancel.xml", feeds.cap_cancel, name="cap_cancel"),
    path("feeds/cap.atom", feeds.cap_feed, name="cap_feed"),
    path("feeds/units/<int:unit_pk>/cap.atom", feeds.unit_cap_feed, name="unit_cap_feed"),
    path("profile/tokens/", profile.token_list, name="tokens"),
    path("profile/tokens/<int:pk>/revoke", profile.token_revoke, name="token_revoke"),
]

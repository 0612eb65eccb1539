"""The floors: the least a page or a write can cost in this stack. Bare function views, no
service, no permissions module, no cache, served beside the portal (`bench/settings.py`)."""

from django.db import connection
from django.http import HttpResponse
from django.template import Context, Template
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.http import require_POST

FEED_SQL = """
SELECT b.id, b.title, b.instruction, b.priority, b.kind, b.effective_at, b.expires_at,
       r.first_opened_at, r.acknowledged_version
FROM bulletins_bulletin b
JOIN bulletins_recipient r ON r.bulletin_id = b.id AND r.user_id = %s
WHERE b.status IN ('scheduled', 'in_force') AND b.effective_at <= %s
  AND (b.expires_at IS NULL OR b.expires_at > %s)
ORDER BY b.priority, b.effective_at DESC, b.id DESC
"""
FEED_PAGE = Template(
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Feed</title></head><body>"
    "<ul>{% for row in rows %}<li><a href='/bulletins/{{ row.0 }}/'>{{ row.1 }}</a> "
    "{{ row.2 }} {{ row.3 }} {{ row.4 }} {{ row.5 }} {{ row.6 }} {{ row.7 }} {{ row.8 }}</li>"
    "{% endfor %}</ul></body></html>"
)
ACK_SQL = """
INSERT INTO bulletins_receipt (bulletin_id, version_id, user_id, opened_at, acknowledged_at,
                               statement, content_hash, auth_method, user_agent)
SELECT bulletin_id, id, %s, %s, %s, 'I have read and understand this order.', content_hash,
       'session', ''
FROM bulletins_bulletinversion WHERE id = %s
ON CONFLICT (user_id, version_id) DO NOTHING
"""


def floor_feed(request):
    """20 rows joined the same way as the feed, rendered by a template."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(FEED_SQL, [request.user.pk, now, now])
        rows = cursor.fetchall()
    return HttpResponse(FEED_PAGE.render(Context({"rows": rows})))


@require_POST
def floor_acknowledge(request, version_id):
    """One INSERT ... ON CONFLICT DO NOTHING (after the same session and CSRF middleware)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(ACK_SQL, [request.user.pk, now, now, version_id])
    return HttpResponse(status=204)


urlpatterns = [
    path("_floor/feed", floor_feed),
    path("_floor/acknowledge/<int:version_id>", floor_acknowledge),
    path("", include("portal.urls")),
]

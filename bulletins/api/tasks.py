"""The API's Celery task (imported by the worker through CELERY_IMPORTS)."""

from celery import shared_task
from django.utils import timezone

from bulletins.api import tokens


@shared_task(time_limit=60, soft_time_limit=50)
def record_token_refusals_task(ip, window):
    """A minute after an IP's first refused API token: one audit event with the minute's count."""
    event = tokens.record_refusals(ip, window, now=timezone.now())
    return event.pk if event else None

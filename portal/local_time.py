"""The agency's local time as people read it. Times are stored in UTC; pages, emails and forms
show them in the agency's zone (settings.TIME_ZONE, the current time zone) and say which."""

from django.utils import timezone


def zone_name():
    """The agency's time zone as people say it: "New York" for America/New_York."""
    return timezone.get_current_timezone_name().rsplit("/", 1)[-1].replace("_", " ")

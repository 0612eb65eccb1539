"""Structured logs: one JSON object a line, each with the request id, nothing secret in it.

The application never logs passwords, tokens or bulletin bodies; `RedactFilter` is the net
under that rule for what libraries log (a password-reset link in a "Not Found" line, say).
"""

import contextvars
import logging
import re

from pythonjsonlogger.json import JsonFormatter

request_id_var = contextvars.ContextVar("request_id", default="")

SECRET_NAMES = r"\w*password\d?|token|secret|code|key|csrfmiddlewaretoken"
REDACTIONS = (
    (re.compile(r"(/password/reset/key/)[^/\s'\"]+"), r"\1[redacted]"),
    (re.compile(rf"\b({SECRET_NAMES})=[^&\s'\"]+", re.I), r"\1=[redacted]"),
)


def current_request_id():
    return request_id_var.get()


def redact(text):
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        if not getattr(record, "request_id", ""):
            # Django logs 4xx/5xx responses after the middleware: the request still knows it.
            from_request = getattr(getattr(record, "request", None), "request_id", "")
            record.request_id = current_request_id() or from_request
        return True


class RedactFilter(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class PortalJsonFormatter(JsonFormatter):
    """JSON lines; Django's `request` extra becomes its method and (redacted) path, and a
    traceback is redacted like a message."""

    def formatException(self, ei):  # noqa: N802 - logging's name
        return redact(super().formatException(ei))

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        request = log_data.pop("request", None)
        if request is not None and hasattr(request, "path"):
            log_data["method"] = request.method
            log_data["path"] = redact(request.path)

"""Every API error is JSON: a stable `code`, a human `message`, and the `field` it is about."""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as RequestValidationError

# The statuses every operation may answer with, besides its success.
ERROR_STATUSES = frozenset({400, 401, 403, 404, 409, 422, 429})


class FieldError(Schema):
    field: str | None
    message: str


class Error(Schema):
    code: str
    message: str
    field: str | None = None
    errors: list[FieldError] = []


class ApiError(HttpError):
    def __init__(self, status, code, message, field=None, retry_after=None):
        super().__init__(status, message)
        self.code = code
        self.field = field
        self.retry_after = retry_after


class InvalidFields(Exception):
    """A form the pages use refused the input: [{field, message}] in API names."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def error_response(api, request, status, code, message, errors=()):
    errors = list(errors)
    body = {
        "code": code,
        "message": message,
        "field": errors[0]["field"] if errors else None,
        "errors": errors,
    }
    response = api.create_response(request, body, status=status)
    if status == HTTPStatus.UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _location(loc):
    """("body", "payload", "title") -> "title"; ("query", "page") -> "page"."""
    names = [str(part) for part in loc[1:] if not isinstance(part, int)]
    if loc and loc[0] == "body" and len(names) > 1:
        names = names[1:]
    return ".".join(names) or None


def django_validation_errors(error, field_names=None):
    """[{field, message}] from a Django ValidationError (a service's or a form's)."""
    field_names = field_names or {}
    if not hasattr(error, "error_dict"):
        return [{"field": None, "message": message} for message in error.messages]
    return [
        {"field": field_names.get(name, name) if name != "__all__" else None, "message": message}
        for name, messages in error.message_dict.items()
        for message in messages
    ]


def install(api):
    def api_error(request, exc):
        errors = [{"field": exc.field, "message": exc.message}] if exc.field else []
        response = error_response(api, request, exc.status_code, exc.code, exc.message, errors)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response

    def http_error(request, exc):
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return error_response(api, request, exc.status_code, code, str(exc.message))

    def not_authenticated(request, exc):
        message = "Sign in, or send an API token: Authorization: Bearer <token>."
        return error_response(api, request, 401, "not_authenticated", message)

    def request_invalid(request, exc):
        errors = [{"field": _location(e["loc"]), "message": e["msg"]} for e in exc.errors]
        return error_response(api, request, 422, "validation_error", "Check the fields.", errors)

    def not_found(request, exc):
        return error_response(api, request, 404, "not_found", "Not found.")

    def permission_denied(request, exc):
        message = "You may not do this."
        return error_response(api, request, 403, "permission_denied", message)

    def rule_broken(request, exc):
        """A service refused. About a field: 422; about the bulletin's state: 409."""
        errors = django_validation_errors(exc)
        if any(e["field"] for e in errors):
            return error_response(
                api, request, 422, "validation_error", "Check the fields.", errors
            )
        return error_response(api, request, 409, "conflict", " ".join(exc.messages), errors)

    def invalid_fields(request, exc):
        return error_response(
            api, request, 422, "validation_error", "Check the fields.", exc.errors
        )

    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(InvalidFields, invalid_fields)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(AuthenticationError, not_authenticated)
    api.add_exception_handler(RequestValidationError, request_invalid)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(PermissionDenied, permission_denied)
    api.add_exception_handler(DjangoValidationError, rule_broken)

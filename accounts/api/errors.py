"""The API's one exception handler: every error is ``{"error", "detail", "fields"?}`` JSON.

Django's ``ValidationError`` (raised by services and model validators) is turned into
DRF's with its codes kept (a service's ``username_taken`` becomes a 409 here) and its
field names camelCased (``mfa_max_attempts`` → ``mfaMaxAttempts``).
"""
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.views import set_rollback

from accounts.errors import AuthFailure, LockedOut, ResendTooSoon
from accounts.passwords import RULE_CODES

class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than 1 MiB."
    default_code = "payload_too_large"


class WrongMfaMethod(exceptions.APIException):
    """A step of the sign-in that does not belong to this user's second factor."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This account does not use that second factor."
    default_code = "wrong_mfa_method"


_CODES = {
    exceptions.ParseError: "invalid_json",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_request",
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def error_body(code: str, detail: str, fields: dict | None = None, **extra) -> dict:
    body = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    body.update({camel(k): v for k, v in extra.items()})
    return body


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for v in detail.values() for m in _flatten(v)]
    if isinstance(detail, list):
        return [m for v in detail for m in _flatten(v)]
    return [str(detail)]


def _fields(detail) -> dict:
    """Serializer errors are keyed by the API's own (camelCase) names, as sent."""
    if isinstance(detail, dict):
        return {("request" if k in ("non_field_errors", "__all__") else str(k)): _flatten(v) for k, v in detail.items()}
    return {"request": _flatten(detail)}


def _from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A service's or model's error: codes kept, model field names turned into the API's."""
    detail = get_error_detail(exc)
    if isinstance(detail, dict):
        detail = {camel(k): v for k, v in detail.items()}
    return exceptions.ValidationError(detail)


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, AuthFailure):
        if isinstance(exc, (LockedOut, ResendTooSoon)):
            headers["Retry-After"] = str(exc.extra["retry_after"])
        set_rollback()
        return Response(error_body(exc.code, exc.message, **exc.extra), status=exc.status, headers=headers)
    if isinstance(exc, DjangoValidationError):
        exc = _from_django(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handler answers (JSON under the API, see config.views)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(int(exc.wait + 0.999), 1))
    set_rollback()
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail)
        if _has_code(exc, "username_taken"):
            code, status_code, detail = "username_taken", status.HTTP_409_CONFLICT, "That username is already taken in this tenant."
        elif any(_has_code(exc, rule) for rule in RULE_CODES):
            code, status_code, detail = "invalid_password", exc.status_code, "The password does not meet the password rules (see fields)."
        else:
            code, status_code, detail = "invalid_request", exc.status_code, "The request has invalid fields."
        return Response(error_body(code, detail, fields), status=status_code, headers=headers)
    code = _code_of(exc)
    return Response(error_body(code, _flatten(exc.detail)[0]), status=exc.status_code, headers=headers)


def _code_of(exc) -> str:
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else "error"


def _has_code(exc, code: str) -> bool:
    return code in _flatten(exc.get_codes())

"""The API's one exception handler: every error is ``{"error", "detail", "fields"?}`` JSON."""
import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from accounts.errors import AuthFailure, LockedOut, ResendTooSoon

logger = logging.getLogger(__name__)

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
    return head + "".join(part.title() for part in rest)


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
    if isinstance(detail, dict):
        return {("request" if k == "non_field_errors" else camel(k)): _flatten(v) for k, v in detail.items()}
    return {"request": _flatten(detail)}


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, AuthFailure):
        if isinstance(exc, (LockedOut, ResendTooSoon)):
            headers["Retry-After"] = str(exc.extra["retry_after"])
        set_rollback()
        return Response(error_body(exc.code, exc.message, **exc.extra), status=exc.status, headers=headers)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"request": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        set_rollback()
        return Response(error_body("payload_too_large", "The request body is larger than 1 MiB."), status=413)
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handler answers (JSON under the API, see config.views)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail)
        code = "username_taken" if _has_code(exc, "username_taken") else "invalid_request"
        status_code = status.HTTP_409_CONFLICT if code == "username_taken" else exc.status_code
        return Response(error_body(code, "The request has invalid fields.", fields), status=status_code, headers=headers)
    code = _code_of(exc)
    return Response(error_body(code, _flatten(exc.detail)[0]), status=exc.status_code, headers=headers)


def _code_of(exc) -> str:
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else "error"


def _has_code(exc, code: str) -> bool:
    codes = exc.get_codes()
    return code in _flatten(codes)

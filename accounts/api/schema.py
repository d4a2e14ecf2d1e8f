"""OpenAPI documentation helpers: the bearer scheme and the documented error answers."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from accounts.api.serializers import ErrorSerializer


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.TenantJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "The `accessToken` of `auth/login` or `auth/mfa/verify`, valid only on its own "
                "tenant's URLs. The Users, events and Settings calls need a tenant admin, signed "
                "in with MFA when that admin has MFA."
            ),
        }


# status → (description, [(code, detail, extra fields)])
ERRORS = {
    "invalid_request": (400, "The body is not the expected JSON object, or a field is missing, unknown or of the wrong type.",
                        {"fields": {"username": ["This field is required."], "colour": ["Unknown field."]}}),
    "invalid_json": (400, "The request body is not valid JSON.", {}),
    "invalid_credentials": (401, "The username or password is incorrect.", {}),
    "invalid_mfa_token": (401, "This sign-in has expired or is not valid. Please sign in again.", {}),
    "invalid_code": (401, "That code is not valid. 4 attempts left before the account is locked.", {"attemptsRemaining": 4}),
    "invalid_token": (401, "The access token is invalid or expired.", {}),
    "not_authenticated": (401, "Authentication credentials were not provided.", {}),
    "forbidden": (403, "Only an admin of this tenant, signed in with MFA when they have it, may do this.", {}),
    "not_found": (404, "Not found.", {}),
    "username_taken": (409, "That username is already taken in this tenant.", {"fields": {"username": ["That username is already taken in this tenant."]}}),
    "enrollment_not_allowed": (409, "This account has no authenticator app set-up to do.", {}),
    "wrong_mfa_method": (409, "This account does not use that second factor.", {}),
    "payload_too_large": (413, "The request body is larger than 1 MiB.", {}),
    "unsupported_media_type": (415, 'Unsupported media type "text/plain" in request.', {}),
    "locked_out": (429, "Too many failed attempts. This account is locked; try again in 4 min 10 s.", {"retryAfter": 250}),
    "resend_too_soon": (429, "A code was sent moments ago. You can ask for another in 42 s.", {"retryAfter": 42}),
    "rate_limited": (429, "Request was throttled. Expected available in 12 seconds.", {}),
    "email_unavailable": (503, "The code could not be emailed just now. Please try again in a moment.", {}),
    "rate_limit_unavailable": (503, "Signing in is briefly unavailable. Try again in a few seconds.", {}),
}

BODY_ERRORS = ("invalid_request", "invalid_json", "payload_too_large", "unsupported_media_type")
ADMIN_ERRORS = ("invalid_token", "not_authenticated", "forbidden", "not_found")

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again.",
)


def error_responses(*codes: str) -> dict:
    """``{status: OpenApiResponse}`` for these error codes, one example per code."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes + ("not_found",)):  # every URL names a tenant that may not exist
        by_status.setdefault(ERRORS[code][0], []).append(code)
    responses = {}
    for status, status_codes in sorted(by_status.items()):
        examples = [
            OpenApiExample(code, value={"error": code, "detail": ERRORS[code][1], **ERRORS[code][2]}, response_only=True, status_codes=[status])
            for code in status_codes
        ]
        responses[status] = OpenApiResponse(
            ErrorSerializer, description=" / ".join(f"`{c}`" for c in status_codes), examples=examples
        )
    return responses


def strict_request_schemas(result, generator, request, public):
    """Postprocessing hook: the published schema states what the server enforces, so clients
    (and schemathesis) do not send what is always refused. Every request body refuses unknown
    keys (``InputSerializer``); the policy fields carry the ranges of the Tenant model's
    validators (their one home); ``?limit=`` its page-size range."""
    from django.core.validators import MaxValueValidator, MinValueValidator

    from accounts.api.pagination import ApiCursorPagination
    from accounts.api.serializers import _POLICY
    from tenants.models import Tenant

    ranges = {}
    for camel_name, field_name in _POLICY.items():
        for validator in Tenant._meta.get_field(field_name).validators:
            if isinstance(validator, MinValueValidator):
                ranges.setdefault(camel_name, {})["minimum"] = validator.limit_value
            elif isinstance(validator, MaxValueValidator):
                ranges.setdefault(camel_name, {})["maximum"] = validator.limit_value
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request") or component.get("type") != "object":
            continue
        component["additionalProperties"] = False
        for prop, bounds in ranges.items():
            if prop in component.get("properties", {}):
                component["properties"][prop].update(bounds)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("name") == "limit" and parameter.get("in") == "query":
                    parameter.setdefault("schema", {}).update(minimum=1, maximum=ApiCursorPagination.max_page_size)
    return result

"""The API's OpenAPI documentation, kept apart from the views' behaviour: the bearer scheme,
the documented error answers, and one ``extend_schema_view`` per view (summaries,
descriptions, examples, responses), applied as a class decorator in ``views.py``."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework.fields import empty

from accounts.api.pagination import ApiCursorPagination
from accounts.api.serializers import (
    AuditEventSerializer,
    EmailSentSerializer,
    ErrorSerializer,
    ForgotInput,
    ForgotResultSerializer,
    LoginInput,
    MfaChallengeSerializer,
    MfaTokenInput,
    PasswordChangeInput,
    RefreshInput,
    ResetInput,
    SettingsInput,
    SettingsSerializer,
    TokensSerializer,
    TotpSetupSerializer,
    UserCreateInput,
    UserSerializer,
    UserUpdateInput,
    VerifyCodeInput,
    VerifyPasskeyInput,
    VerifyResultSerializer,
    WebAuthnOptionsSerializer,
)


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
    "invalid_password": (400, "The password does not meet the password rules (see fields).",
                         {"fields": {"newPassword": ["This password is too short. It must contain at least 12 characters.", "This password is too common."]}}),
    "invalid_reset_token": (400, "This password reset link is not valid: it may have expired or been used already. Ask for a new one.", {}),
    "invalid_credentials": (401, "The username or password is incorrect.", {}),
    "invalid_mfa_token": (401, "This sign-in has expired or is not valid. Please sign in again.", {}),
    "invalid_code": (401, "That code is not valid. 4 attempts left before the account is locked.", {"attemptsRemaining": 4}),
    "code_already_used": (401, "That code has just been used. Wait for a new code and enter that one.", {}),
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
    "service_unavailable": (503, "The service is briefly unavailable. Try again shortly.", {}),
}

# Documentation keys whose code on the wire is another (one code, two meanings by status).
WIRE_CODES = {"invalid_reset_token": "invalid_token"}

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
    # Every URL names a tenant that may not exist, and any call may meet a database outage.
    for code in dict.fromkeys(codes + ("not_found", "service_unavailable")):
        by_status.setdefault(ERRORS[code][0], []).append(code)
    responses = {}
    for status, status_codes in sorted(by_status.items()):
        examples = [
            OpenApiExample(code, value={"error": WIRE_CODES.get(code, code), "detail": ERRORS[code][1], **ERRORS[code][2]},
                           response_only=True, status_codes=[status])
            for code in status_codes
        ]
        responses[status] = OpenApiResponse(
            ErrorSerializer, description=" / ".join(f"`{WIRE_CODES.get(c, c)}`" for c in status_codes), examples=examples
        )
    return responses


def strict_request_schemas(result, generator, request, public):
    """Postprocessing hook: the published schema states what the server enforces, so clients
    (and schemathesis) do not send what is always refused. Every request body refuses unknown
    keys (``InputSerializer``); ``?limit=`` has its page-size range. (The policy fields' ranges
    come from their serializer fields, which read the Tenant model's validators.)"""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    schemas = result.get("components", {}).get("schemas", {})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            # A body that is one of several shapes (``auth/mfa/verify``: a code or a passkey's
            # answer) is required, as each shape's fields are.
            for media in (operation.get("requestBody", {}).get("content", {}).values() if isinstance(operation, dict) else []):
                ref = media.get("schema", {}).get("$ref", "")
                if "oneOf" in schemas.get(ref.rsplit("/", 1)[-1], {}):
                    operation["requestBody"]["required"] = True
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("name") == "limit" and parameter.get("in") == "query":
                    parameter.setdefault("schema", {}).update(minimum=1, maximum=ApiCursorPagination.max_page_size)
    return result


# --- the operations, one declaration per view -------------------------------------------------

TOKENS_EXAMPLE = {
    "accessToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJl",
    "refreshToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl",
    "tokenType": "Bearer",
    "expiresIn": 300,
}
USER_EXAMPLE = {
    "id": "5b7f2f6e-3f0c-4f0e-9a51-7f7d2c1e9b10",
    "username": "alice",
    "email": "alice@example.com",
    "mfaMethod": "totp",
    "mfaEnrolled": True,
    "isActive": True,
    "isAdmin": False,
    "lockedUntil": None,
    "createdAt": "2025-01-01T09:00:00Z",
    "lastLoginAt": "2025-01-02T08:30:00Z",
}
TENANT_ID = OpenApiParameter(
    "tenant_id",
    str,
    OpenApiParameter.PATH,
    description="The tenant's id, as in its sign-in URL (2–63 lowercase letters, digits and hyphens). `make run` seeds `demo`.",
    examples=[OpenApiExample("demo", value="demo", summary="The demo tenant of make run")],
)


def sign_in_first(endpoint) -> int:
    """``SORT_OPERATIONS``: the sign-in calls (``auth/…``) before the rest; otherwise the
    URLs' own order (the sort is stable)."""
    path = endpoint[0]
    return 0 if "/v2/auth/" in path else 1
USER_ID = OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The user's id (a UUID).")
AUTH_TAG = ["Sign-in"]
USERS_TAG = ["Users"]
SETTINGS_TAG = ["Settings"]
SIGN_IN_LIMITS = ("rate_limited", "rate_limit_unavailable")

tenant_view = extend_schema(parameters=[TENANT_ID])


def answer_with_examples(serializer, examples: dict, description: str = "") -> OpenApiResponse:
    """A success answer with its examples (name → body)."""
    return OpenApiResponse(
        serializer, description=description, examples=[OpenApiExample(name, value=value, response_only=True) for name, value in examples.items()]
    )


def api_operation(*, tags: list, operation_id: str, summary: str, description: str, answer: dict, errors: tuple,
               request=empty, parameters: tuple = (), examples: dict | None = None):
    """One operation: its answer, these error codes (in this order, one example each),
    ``Retry-After`` wherever a 429 may answer, and its request examples (name → body)."""
    if any(ERRORS[code][0] == 429 for code in errors):
        parameters = (*parameters, RETRY_AFTER)
    return extend_schema(
        tags=tags,
        summary=summary,
        operation_id=operation_id,
        description=description,
        request=request,
        responses={**answer, **error_responses(*errors)},
        parameters=list(parameters) or None,
        examples=[OpenApiExample(name, value=value, request_only=True) for name, value in (examples or {}).items()] or None,
    )


login = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_login",
        summary="Sign in with username and password",
        description=(
            "Checks the password (with lockout). Without a second factor the answer is the tokens. "
            "Otherwise it is an `mfaToken` (valid 10 minutes) to finish the sign-in with: "
            "`mfaMethod` tells which factor; `enrollmentRequired` is true when it must be set up first. "
            "A user without a method in a tenant that requires MFA gets `mfaMethod: \"totp\"` and "
            "`enrollmentRequired: true`: call `auth/mfa/totp/setup` for the app, or `auth/mfa/email/send` "
            "to choose emailed codes instead (the last of the two calls wins). Email users call "
            "`auth/mfa/email/send` to receive their code."
        ),
        request=LoginInput,
        answer={
            200: answer_with_examples(
                PolymorphicProxySerializer(
                    component_name="LoginResult", serializers=[TokensSerializer, MfaChallengeSerializer], resource_type_field_name=None
                ),
                {
                    "Tokens (no second factor)": TOKENS_EXAMPLE,
                    "MFA challenge": {"mfaRequired": True, "mfaToken": "eyJ1c2VyX2lkIjoi…", "mfaMethod": "totp", "enrollmentRequired": False},
                },
                description="Tokens, or the MFA challenge.",
            )
        },
        errors=(*BODY_ERRORS, "invalid_credentials", "locked_out", *SIGN_IN_LIMITS),
        examples={"Login": {"username": "alice", "password": "correct-horse-battery-9"}},
    )
)

totp_setup = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_totp_setup",
        summary="Begin setting up the authenticator app",
        description=(
            "Only while `auth/login` answered `enrollmentRequired: true` for the app. Answers the secret, "
            "the otpauth URI and its QR code; calling again answers the same secret until a code from "
            "the app confirms it at `auth/mfa/verify`."
        ),
        request=MfaTokenInput,
        answer={
            200: answer_with_examples(
                TotpSetupSerializer,
                {
                    "Set-up": {
                        "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                        "otpauthUri": "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme&algorithm=SHA1&digits=6&period=30",
                        "qrSvg": "<svg role=\"img\" …>…</svg>",
                    }
                },
            )
        },
        errors=(*BODY_ERRORS, "invalid_mfa_token", "enrollment_not_allowed", *SIGN_IN_LIMITS),
    )
)

email_send = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_email_send",
        summary="Email a sign-in code",
        description=(
            "For email users; or, for a user without a method who must set one up, this chooses "
            "email codes (see `auth/login`). An earlier unexpired code keeps working. Nothing is "
            "counted or changed when the mail cannot be sent (503)."
        ),
        request=MfaTokenInput,
        answer={202: answer_with_examples(EmailSentSerializer, {"Sent": {"sentTo": "a***@example.com", "resendAfter": 60}})},
        errors=(*BODY_ERRORS, "invalid_mfa_token", "wrong_mfa_method", "resend_too_soon", *SIGN_IN_LIMITS, "email_unavailable"),
    )
)

webauthn_options = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_webauthn_options",
        summary="Begin a passkey ceremony",
        description=(
            "For passkey users (`mfaMethod: \"webauthn\"`), or a user who must choose a method and picks "
            "passkeys. While the account has no passkey the answer is creation options "
            "(`navigator.credentials.create`); otherwise request options (`navigator.credentials.get`). "
            "The relying party id is the host this call was made to, the origin its scheme and host. "
            "Send the browser's answer as `credential` to `auth/mfa/verify`. Each call makes a new "
            "challenge: single use, valid 5 minutes, bound to this sign-in."
        ),
        request=MfaTokenInput,
        answer={
            200: answer_with_examples(
                WebAuthnOptionsSerializer,
                {
                    "Request options": {
                        "publicKey": {
                            "challenge": "dGhpcyBpcyBhIHJhbmRvbSBjaGFsbGVuZ2UgLi4uLi4",
                            "rpId": "auth.example.com",
                            "allowCredentials": [{"type": "public-key", "id": "n2Wm3M5xQ0a8"}],
                            "userVerification": "preferred",
                            "timeout": 300000,
                        }
                    }
                },
            )
        },
        errors=(*BODY_ERRORS, "invalid_mfa_token", "wrong_mfa_method", *SIGN_IN_LIMITS),
    )
)

verify = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_verify",
        summary="Give the second factor and receive tokens",
        description=(
            "A six-digit code from the app or the email (spaces ignored), or an unused recovery code; or, "
            "for passkeys, `credential`: the browser's answer to the options of `auth/mfa/webauthn/options`. "
            "A wrong code or a refused passkey answer (malformed, replayed, wrong origin or RP id, unknown "
            "credential, expired challenge, a sign count going back) counts towards the lockout "
            "(`attemptsRemaining`). When this finished setting up the app or a first passkey, the answer "
            "also holds the ten recovery codes, shown only this once. With `rememberDevice: true` where the "
            "tenant's `rememberDeviceDays` is above 0, the answer holds a `deviceToken` for `auth/login`."
        ),
        request=PolymorphicProxySerializer(
            component_name="Verify", serializers=[VerifyCodeInput, VerifyPasskeyInput], resource_type_field_name=None
        ),
        answer={
            200: answer_with_examples(
                VerifyResultSerializer,
                {"Tokens": TOKENS_EXAMPLE, "Tokens after app set-up": {**TOKENS_EXAMPLE, "recoveryCodes": ["k3vq-9x2m-7hpa", "…"]}},
            )
        },
        errors=(*BODY_ERRORS, "invalid_mfa_token", "invalid_code", "code_already_used", "locked_out", *SIGN_IN_LIMITS),
        examples={
            "Verify": {"mfaToken": "eyJ1c2VyX2lkIjoi…", "code": "123456"},
            "Verify a passkey": {
                "mfaToken": "eyJ1c2VyX2lkIjoi…",
                "credential": {
                    "id": "n2Wm3M5xQ0a8", "rawId": "n2Wm3M5xQ0a8", "type": "public-key",
                    "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0Ii4uLn0", "authenticatorData": "SZYN5Y…", "signature": "MEUCIQ…"},
                },
            },
        },
    )
)

refresh = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_token_refresh",
        summary="Exchange a refresh token for a new pair",
        description=(
            "Rotation: the refresh token given stops working, and the next one of its chain is issued. "
            "Presenting a used refresh token again ends its whole chain, the newer tokens too; a chain "
            "ends `REFRESH_TOKEN_MAX_SECONDS` after the sign-in that began it."
        ),
        request=RefreshInput,
        answer={200: answer_with_examples(TokensSerializer, {"Tokens": TOKENS_EXAMPLE})},
        errors=(*BODY_ERRORS, "invalid_token"),
    )
)

logout = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_logout",
        summary="Sign out: revoke a refresh token",
        description="The refresh token stops working. Access tokens expire by themselves (`expiresIn`).",
        request=RefreshInput,
        answer={204: OpenApiResponse(description="Signed out.")},
        errors=(*BODY_ERRORS, "invalid_token"),
    )
)

USER_RESPONSE = answer_with_examples(UserSerializer, {"User": USER_EXAMPLE})

password_forgot = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_password_forgot",
        summary="Forgot password: email a reset link",
        description=(
            "`login` is a username or an email address of this tenant. The answer is the same 202, in "
            "the same time, whether or not an account matches; a match is mailed a link to "
            "`/tenant/ID/password/reset/TOKEN/` (single use, valid `passwordResetTtlSeconds`, dead once "
            "the password changes), at most one per `emailResendSeconds` per account. The per-IP limit "
            "of the sign-in calls applies."
        ),
        request=ForgotInput,
        answer={202: answer_with_examples(ForgotResultSerializer, {"Accepted": {"detail": "If that matches an account, a link to set a new password is on its way to its email address."}})},
        errors=(*BODY_ERRORS, *SIGN_IN_LIMITS),
        examples={"By username": {"login": "alice"}, "By email": {"login": "alice@example.com"}},
    )
)

password_reset = extend_schema_view(
    post=api_operation(
        tags=AUTH_TAG,
        operation_id="auth_password_reset",
        summary="Set a new password with a reset link's token",
        description=(
            "`token` is the last part of the emailed link. 204: the password is set, every session and "
            "refresh token of the user ends, a password lockout is lifted (an MFA lockout is not), and "
            "nobody is signed in: sign in with `auth/login` and the second factor as always. A forged, "
            "expired, used or other tenant's token answers `invalid_token`; a password that breaks a "
            "rule answers `invalid_password` with the rules broken in `fields.newPassword`."
        ),
        request=ResetInput,
        answer={204: OpenApiResponse(description="The new password is set.")},
        errors=(*BODY_ERRORS, "invalid_reset_token", "invalid_password", *SIGN_IN_LIMITS),
        examples={"Reset": {"token": "5b7f2f6e3f0c4f0e9a517f7d2c1e9b10-cf3k2a-3c1a0b9d8e7f6a5b4c3d2e1f", "newPassword": "a-new-long-passphrase-7"}},
    )
)

me = extend_schema_view(
    get=api_operation(
        tags=["Me"],
        operation_id="me_get",
        summary="The signed-in user",
        description="The user of the access token.",
        answer={200: USER_RESPONSE},
        errors=("invalid_token", "not_authenticated"),
    )
)

me_password = extend_schema_view(
    post=api_operation(
        tags=["Me"],
        operation_id="me_password_change",
        summary="Change my password",
        description=(
            "Needs the current password: a wrong one answers `invalid_credentials` and counts as a failed "
            "password (`passwordMaxAttempts`, then `locked_out`). 204: the new password is set; this "
            "token's refresh chain keeps working, every other refresh token and browser session of the "
            "user ends; the user is emailed a notice."
        ),
        request=PasswordChangeInput,
        answer={204: OpenApiResponse(description="The new password is set.")},
        errors=(*BODY_ERRORS, "invalid_token", "not_authenticated", "invalid_password", "invalid_credentials", "locked_out",
                *SIGN_IN_LIMITS),
        examples={"Change": {"currentPassword": "correct-horse-battery-9", "newPassword": "a-new-long-passphrase-7"}},
    )
)

user_list = extend_schema_view(
    get=api_operation(
        tags=USERS_TAG,
        operation_id="users_list",
        summary="List users",
        description="Oldest first, in pages: follow `next` (a full URL, null on the last page).",
        parameters=(
            OpenApiParameter("username", str, description="Exactly this username (case-insensitive)."),
            OpenApiParameter("email", str, description="Exactly this email address (case-insensitive)."),
        ),
        answer={200: UserSerializer(many=True)},
        errors=("invalid_request", *ADMIN_ERRORS),
    ),
    post=api_operation(
        tags=USERS_TAG,
        operation_id="users_create",
        summary="Create a user",
        description="Usernames are unique per tenant (case-insensitive); the password must pass the password rules.",
        request=UserCreateInput,
        answer={201: answer_with_examples(UserSerializer, {"Created": USER_EXAMPLE})},
        errors=(*BODY_ERRORS, *ADMIN_ERRORS, "invalid_password", "username_taken"),
        examples={
            "New app user": {"username": "alice", "email": "alice@example.com", "password": "correct-horse-battery-9", "mfaMethod": "totp"},
            "New user who sets their own password": {"username": "bob", "email": "bob@example.com", "mfaMethod": "email"},
        },
    ),
)

_user_change = dict(
    tags=USERS_TAG,
    description=(
        "Every field is optional; fields left out keep their values. PUT and PATCH are the same. "
        "`resetTOTP: true` resets the user's MFA (they set the app up again at next sign-in), "
        "`unlock: true` lifts a lockout, `password` sets a new password, `sendPasswordReset: true` "
        "emails the user a link to set their own (single use, valid `passwordResetTtlSeconds`: the way "
        "to onboard a user without knowing their password); all of it is audited with the acting "
        "admin, and nothing changes when any part is refused or the mail cannot be queued."
    ),
    parameters=(USER_ID,),
    request=UserUpdateInput,
    answer={200: USER_RESPONSE},
    errors=(*BODY_ERRORS, *ADMIN_ERRORS, "invalid_password", "username_taken"),
    examples={"Reset MFA (lost phone)": {"resetTOTP": True}, "Unlock": {"unlock": True},
              "Send a password reset link": {"sendPasswordReset": True}},
)

user_detail = extend_schema_view(
    get=api_operation(
        tags=USERS_TAG,
        operation_id="users_get",
        summary="Get a user",
        description="A user of this tenant (404 for any other id).",
        parameters=(USER_ID,),
        answer={200: USER_RESPONSE},
        errors=ADMIN_ERRORS,
    ),
    put=api_operation(operation_id="users_update", summary="Change a user, reset their MFA, unlock them", **_user_change),
    patch=api_operation(operation_id="users_partial_update", summary="Change a user (same as PUT)", **_user_change),
    delete=api_operation(
        tags=USERS_TAG,
        operation_id="users_delete",
        summary="Delete a user",
        description="The user and their factors go; their refresh tokens stop working; their audit events stay.",
        parameters=(USER_ID,),
        answer={204: OpenApiResponse(description="Deleted.")},
        errors=ADMIN_ERRORS,
    ),
)

user_events = extend_schema_view(
    get=api_operation(
        tags=USERS_TAG,
        operation_id="users_events_list",
        summary="A user's audit events",
        description="Sign-ins, failures, lockouts, factor set-ups, resets … newest first, in pages (follow `next`).",
        parameters=(USER_ID,),
        answer={200: AuditEventSerializer(many=True)},
        errors=("invalid_request", *ADMIN_ERRORS),
    )
)

_settings_change = dict(
    tags=SETTINGS_TAG,
    description="Any of the policy fields; fields left out keep their values. PUT and PATCH are the same. Answers the whole policy.",
    request=SettingsInput,
    answer={200: SettingsSerializer},
    errors=(*BODY_ERRORS, *ADMIN_ERRORS),
    examples={"Stricter lockout": {"mfaMaxAttempts": 3, "lockoutSeconds": 900},
              "Password policy": {"passwordMinLength": 14, "passwordResetTtlSeconds": 1800}},
)

tenant_settings = extend_schema_view(
    get=api_operation(
        tags=SETTINGS_TAG,
        operation_id="settings_get",
        summary="The tenant's MFA and lockout policy",
        description="The whole policy, as the Settings calls take it.",
        answer={200: SettingsSerializer},
        errors=ADMIN_ERRORS,
    ),
    put=api_operation(operation_id="settings_update", summary="Change the policy", **_settings_change),
    patch=api_operation(operation_id="settings_partial_update", summary="Change the policy (same as PUT)", **_settings_change),
)

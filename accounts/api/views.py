"""The REST API under ``/tenant/<tenant_id>/v2/``: thin front doors onto the services.

Sign-in: ``auth/login`` → (``auth/mfa/totp/setup`` | ``auth/mfa/email/send``) →
``auth/mfa/verify`` → tokens; ``auth/token/refresh`` and ``auth/logout``. Admin calls:
``Users``, ``Users/<id>``, ``Users/<id>/events`` and ``Settings``.
"""
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, PermissionDenied, UnsupportedMediaType, ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import schema as docs  # noqa: F401  (registers the bearer scheme)
from accounts.api.errors import WrongMfaMethod
from accounts.api.pagination import ApiCursorPagination, NewestFirstPagination
from accounts.api.parsers import LimitedJSONParser
from accounts.api.schema import ADMIN_ERRORS, BODY_ERRORS, RETRY_AFTER, error_responses
from accounts.api.serializers import (
    AuditEventSerializer,
    EmailSentSerializer,
    LoginInput,
    MfaChallengeSerializer,
    MfaTokenInput,
    RefreshInput,
    SettingsInput,
    SettingsSerializer,
    TokensSerializer,
    TotpSetupSerializer,
    UserCreateInput,
    UserFilterInput,
    UserSerializer,
    UserUpdateInput,
    VerifyInput,
    VerifyResultSerializer,
)
from accounts.api.throttles import AuthRateThrottle
from accounts.audit import RequestContext
from accounts.errors import AuthFailure, EnrollmentNotAllowed, InvalidMfaToken
from accounts.models import MfaMethod
from accounts.selectors import audit_event_list, normalize_username, tenant_and_user_by_username, user_get, user_list
from accounts.services import password_login, user_create, user_delete
from accounts.tokens import token_refresh, token_revoke
from flows import pending as pending_login
from flows.manage import user_change
from flows.signin import api_code, api_password_passed
from mfa.setup import enrollment_email_send, enrollment_needed, enrollment_totp_begin, totp_provisioning, with_totp_confirmed
from tenants.selectors import tenant_get
from tenants.services import tenant_update_policy

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
    description="The tenant's id, as in its sign-in URL (2–63 lowercase letters, digits and hyphens).",
)


@extend_schema(parameters=[TENANT_ID])
class TenantAPIView(APIView):
    """Every API view: the URL's tenant (404 when there is none) and JSON bodies only."""

    parser_classes = [LimitedJSONParser]
    # OPTIONS is not part of the API (no metadata class): it is a 405, and not in Allow.
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]
    # The tenant is read first. A view that reads it with its first row, or needs only its id,
    # sets this False and saves that statement; an unknown tenant still answers 404 before
    # any other error (``handle_exception``).
    tenant_first = True
    _tenant = None

    @property
    def tenant(self):
        if self._tenant is None:
            self._tenant = tenant_get(tenant_id=self.kwargs["tenant_id"])
        return self._tenant

    @tenant.setter
    def tenant(self, tenant):
        self._tenant = tenant

    def handle_exception(self, exc):
        if self._tenant is None and isinstance(exc, (APIException, AuthFailure)):
            try:
                self.tenant
            except Http404 as unknown:
                exc = unknown
        return super().handle_exception(exc)

    def initial(self, request, *args, **kwargs):
        if self.tenant_first:
            self.tenant
        repeated = sorted(name for name, values in request.query_params.lists() if len(values) > 1)
        if repeated:
            # Every query parameter of the API is a single value; which copy would count is a guess.
            raise ValidationError({name: ["Give this query parameter once."] for name in repeated})
        if request.method in ("POST", "PUT", "PATCH") and _has_body(request) and not request.content_type:
            raise UnsupportedMediaType("", detail="Send the body as JSON with 'Content-Type: application/json'.")
        super().initial(request, *args, **kwargs)

    def ctx(self) -> RequestContext:
        return RequestContext.from_request(self.request, channel="api")


def _has_body(request) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


def _valid(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


# --- the sign-in flow -----------------------------------------------------------------------


class PublicView(TenantAPIView):
    """No Bearer token: the body carries the credential (a password, an ``mfaToken``, a refresh token)."""

    authentication_classes = []
    permission_classes = [AllowAny]


class AuthView(PublicView):
    """The sign-in calls: a per-IP throttle (scope ``auth``) on top of the per-user lockout,
    against guessing passwords, codes and ``mfaToken`` values, and against mail floods."""

    throttle_classes = [AuthRateThrottle]

    def pending_user(self, mfa_token: str):
        """The pending sign-in and its user, read with the tenant."""
        pending, user = pending_login.token_user(mfa_token, tenant_id=self.kwargs["tenant_id"])
        if pending is None:
            raise InvalidMfaToken()
        self.tenant = user.tenant
        return pending, user


AUTH_TAG = ["Sign-in"]


class LoginView(AuthView):
    """The password step (``password_login``: lockout, then the hash). No second factor:
    tokens. Otherwise an mfaToken; a user with no method where the tenant requires one is
    offered the app (``mfaMethod: "totp"``, ``enrollmentRequired: true``) and may choose
    email instead with ``auth/mfa/email/send`` (see ``EmailSendView``)."""

    tenant_first = False  # read with the user (tenant_and_user_by_username)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Sign in with username and password", operation_id="auth_login",
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
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="LoginResult",
                    serializers=[TokensSerializer, MfaChallengeSerializer],
                    resource_type_field_name=None,
                ),
                description="Tokens, or the MFA challenge.",
                examples=[
                    OpenApiExample("Tokens (no second factor)", value=TOKENS_EXAMPLE, response_only=True),
                    OpenApiExample(
                        "MFA challenge",
                        value={"mfaRequired": True, "mfaToken": "eyJ1c2VyX2lkIjoi…", "mfaMethod": "totp", "enrollmentRequired": False},
                        response_only=True,
                    ),
                ],
            ),
            **error_responses(*BODY_ERRORS, "invalid_credentials", "locked_out", "rate_limited", "rate_limit_unavailable"),
        },
        parameters=[RETRY_AFTER],
        examples=[OpenApiExample("Login", value={"username": "alice", "password": "correct-horse-battery-9"}, request_only=True)],
    )
    def post(self, request, tenant_id):
        data = _valid(LoginInput, request).validated_data
        self.tenant, user = tenant_and_user_by_username(tenant_id=tenant_id, username=data["username"])
        user = password_login(tenant=self.tenant, username=data["username"], password=data["password"], ctx=self.ctx(), user=user)
        return Response(api_password_passed(user, ctx=self.ctx()))


class TotpSetupView(AuthView):
    tenant_first = False  # read with the pending user (pending_user)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Begin setting up the authenticator app", operation_id="auth_totp_setup",
        description=(
            "Only while the login answered `enrollmentRequired: true` for the app. Answers the secret, "
            "the otpauth URI and its QR code; calling again answers the same secret until a code from "
            "the app confirms it at `auth/mfa/verify`."
        ),
        request=MfaTokenInput,
        responses={
            200: OpenApiResponse(
                TotpSetupSerializer,
                examples=[
                    OpenApiExample(
                        "Set-up",
                        value={
                            "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                            "otpauthUri": "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme&algorithm=SHA1&digits=6&period=30",
                            "qrSvg": "<svg role=\"img\" …>…</svg>",
                        },
                        response_only=True,
                    )
                ],
            ),
            **error_responses(*BODY_ERRORS, "invalid_mfa_token", "enrollment_not_allowed", "rate_limited", "rate_limit_unavailable"),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request, tenant_id):
        data = _valid(MfaTokenInput, request).validated_data
        pending, user = self.pending_user(data["mfaToken"])
        if enrollment_needed(user, enroll=pending.enroll) != "setup":
            raise EnrollmentNotAllowed()
        try:
            secret = enrollment_totp_begin(user=user, enroll=pending.enroll)
        except ValueError:  # confirmed in the meantime
            raise EnrollmentNotAllowed() from None
        return Response(totp_provisioning(user=user, secret=secret))


class EmailSendView(AuthView):
    """Emails a code to an email user. For a user with no method in a tenant that requires
    one, the login answered ``mfaMethod: "totp", enrollmentRequired: true`` with an mfaToken
    carrying ``enroll="totp"``; calling this instead chooses email. The signed token cannot
    change, so the choice lives in the database (an unexpired emailed code; see
    ``mfa.setup.enrollment_method``) and ``auth/mfa/verify`` then judges an emailed code
    with the same mfaToken. Calling ``auth/mfa/totp/setup`` afterwards chooses the app again.
    """

    tenant_first = False  # read with the pending user (pending_user)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Email a sign-in code", operation_id="auth_email_send",
        description=(
            "For email users; or, for a user without a method who must set one up, this chooses "
            "email codes (see `auth/login`). An earlier unexpired code keeps working. Nothing is "
            "counted or changed when the mail cannot be sent (503)."
        ),
        request=MfaTokenInput,
        responses={
            202: OpenApiResponse(
                EmailSentSerializer,
                examples=[OpenApiExample("Sent", value={"sentTo": "a***@example.com", "resendAfter": 60}, response_only=True)],
            ),
            **error_responses(
                *BODY_ERRORS, "invalid_mfa_token", "wrong_mfa_method", "resend_too_soon", "rate_limited", "rate_limit_unavailable", "email_unavailable"
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request, tenant_id):
        data = _valid(MfaTokenInput, request).validated_data
        pending, user = self.pending_user(data["mfaToken"])
        enrolling = bool(pending.enroll) and user.mfa_method == MfaMethod.NONE
        if user.mfa_method != MfaMethod.EMAIL and not enrolling:
            raise WrongMfaMethod()
        body = enrollment_email_send(user=user, enroll=pending.enroll, ctx=self.ctx())
        return Response(body, status=status.HTTP_202_ACCEPTED)


class VerifyView(AuthView):
    tenant_first = False  # read with the pending user (pending_user)

    @extend_schema(
        tags=AUTH_TAG,
        summary="Give the second factor and receive tokens", operation_id="auth_verify",
        description=(
            "A six-digit code from the app or the email (spaces ignored), or an unused recovery code. "
            "A wrong code counts towards the lockout (`attemptsRemaining`). When the code finished "
            "setting up the app, the answer also holds the ten recovery codes, shown only this once."
        ),
        request=VerifyInput,
        responses={
            200: OpenApiResponse(
                VerifyResultSerializer,
                examples=[
                    OpenApiExample("Tokens", value=TOKENS_EXAMPLE, response_only=True),
                    OpenApiExample(
                        "Tokens after app set-up",
                        value={**TOKENS_EXAMPLE, "recoveryCodes": ["k3vq-9x2m-7hpa", "…"]},
                        response_only=True,
                    ),
                ],
            ),
            **error_responses(*BODY_ERRORS, "invalid_mfa_token", "invalid_code", "locked_out", "rate_limited", "rate_limit_unavailable"),
        },
        parameters=[RETRY_AFTER],
        examples=[OpenApiExample("Verify", value={"mfaToken": "eyJ1c2VyX2lkIjoi…", "code": "123456"}, request_only=True)],
    )
    def post(self, request, tenant_id):
        data = _valid(VerifyInput, request).validated_data
        pending, user = self.pending_user(data["mfaToken"])
        return Response(api_code(pending, user, data["code"], ctx=self.ctx()))


class TokenView(PublicView):
    """Refresh and sign-out, with a refresh token. No per-IP limit: a refresh token is signed
    and single-use, so there is nothing to guess (a forged one costs a signature check, less
    than counting it would), and many users behind one address (a NAT, a backend that
    refreshes for its users) must not spend that address's sign-in attempts. They keep
    working while Redis is down."""


class RefreshView(TokenView):
    tenant_first = False  # token_refresh needs only its id

    @extend_schema(
        tags=AUTH_TAG,
        summary="Exchange a refresh token for a new pair", operation_id="auth_token_refresh",
        description="Rotation: the refresh token given stops working (a second use is refused).",
        request=RefreshInput,
        responses={
            200: OpenApiResponse(TokensSerializer, examples=[OpenApiExample("Tokens", value=TOKENS_EXAMPLE, response_only=True)]),
            **error_responses(*BODY_ERRORS, "invalid_token"),
        },
    )
    def post(self, request, tenant_id):
        data = _valid(RefreshInput, request).validated_data
        return Response(token_refresh(refresh_token=data["refreshToken"], tenant_id=tenant_id, ctx=self.ctx()))


class LogoutView(TokenView):
    @extend_schema(
        tags=AUTH_TAG,
        summary="Sign out: revoke a refresh token", operation_id="auth_logout",
        description="The refresh token stops working. Access tokens expire by themselves (`expiresIn`).",
        request=RefreshInput,
        responses={
            204: OpenApiResponse(description="Signed out."),
            **error_responses(*BODY_ERRORS, "invalid_token"),
        },
    )
    def post(self, request, tenant_id):
        data = _valid(RefreshInput, request).validated_data
        token_revoke(refresh_token=data["refreshToken"], tenant=self.tenant, ctx=self.ctx())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- admin calls ----------------------------------------------------------------------------


class IsTenantAdmin(BasePermission):
    """An admin of the URL's tenant (the token is bound to it), whose token carries MFA
    (``amr`` has ``mfa``) whenever that admin has a second factor or the tenant requires one."""

    def has_permission(self, request, view):
        user = request.user
        if not user.is_tenant_admin:
            raise PermissionDenied("Only an admin of this tenant may do this.", code="forbidden")
        amr = request.auth.get("amr") if request.auth is not None else None
        if user.needs_second_factor and not (isinstance(amr, list) and "mfa" in amr):
            raise PermissionDenied("Sign in with your second factor to do this.", code="forbidden")
        return True


class AdminView(TenantAPIView, generics.GenericAPIView):
    permission_classes = [IsAuthenticated, IsTenantAdmin]


USERS_TAG = ["Users"]
USER_ID = OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The user's id (a UUID).")


class UserListView(AdminView):
    pagination_class = ApiCursorPagination
    serializer_class = UserSerializer

    def get_queryset(self):
        users = with_totp_confirmed(user_list(tenant=self.tenant, viewer=self.request.user))
        filters = UserFilterInput(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        if "username" in filters.validated_data:
            users = users.filter(username=normalize_username(filters.validated_data["username"]))
        if "email" in filters.validated_data:
            users = users.filter(email__iexact=filters.validated_data["email"])
        return users

    @extend_schema(
        tags=USERS_TAG,
        summary="List users", operation_id="users_list",
        description="Oldest first, in pages: follow `next` (a full URL, null on the last page).",
        parameters=[
            OpenApiParameter("username", str, description="Exactly this username (case-insensitive)."),
            OpenApiParameter("email", str, description="Exactly this email address (case-insensitive)."),
        ],
        responses={200: UserSerializer(many=True), **error_responses("invalid_request", *ADMIN_ERRORS)},
    )
    def get(self, request, tenant_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(UserSerializer(page, many=True).data)

    @extend_schema(
        tags=USERS_TAG,
        summary="Create a user", operation_id="users_create",
        description="Usernames are unique per tenant (case-insensitive); the password must pass the password rules.",
        request=UserCreateInput,
        responses={
            201: OpenApiResponse(UserSerializer, examples=[OpenApiExample("Created", value=USER_EXAMPLE, response_only=True)]),
            **error_responses(*BODY_ERRORS, *ADMIN_ERRORS, "username_taken"),
        },
        examples=[
            OpenApiExample(
                "New app user",
                value={"username": "alice", "email": "alice@example.com", "password": "correct-horse-battery-9", "mfaMethod": "totp"},
                request_only=True,
            )
        ],
    )
    def post(self, request, tenant_id):
        data = _valid(UserCreateInput, request)
        user = user_create(tenant=self.tenant, **data.service_kwargs())
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailView(AdminView):
    def get_object(self):
        return user_get(tenant=self.tenant, user_id=self.kwargs["user_id"], viewer=self.request.user)

    @extend_schema(
        tags=USERS_TAG,
        summary="Get a user", operation_id="users_get",
        description="A user of this tenant (404 for any other id).",
        parameters=[USER_ID],
        responses={200: OpenApiResponse(UserSerializer, examples=[OpenApiExample("User", value=USER_EXAMPLE, response_only=True)]), **error_responses(*ADMIN_ERRORS)},
    )
    def get(self, request, tenant_id, user_id):
        return Response(UserSerializer(self.get_object()).data)

    def _change(self, request):
        data = _valid(UserUpdateInput, request)
        user = user_change(user=self.get_object(), actor=request.user, ctx=self.ctx(), **data.service_kwargs())
        return Response(UserSerializer(user).data)

    _change_schema = dict(
        tags=USERS_TAG,
        parameters=[USER_ID],
        request=UserUpdateInput,
        description=(
            "Every field is optional; fields left out keep their values. PUT and PATCH are the same. "
            "`resetTOTP: true` resets the user's MFA (they set the app up again at next sign-in), "
            "`unlock: true` lifts a lockout, `password` sets a new password; all of it is audited "
            "with the acting admin, and nothing changes when any part is refused."
        ),
        responses={
            200: OpenApiResponse(UserSerializer, examples=[OpenApiExample("User", value=USER_EXAMPLE, response_only=True)]),
            **error_responses(*BODY_ERRORS, *ADMIN_ERRORS, "username_taken"),
        },
        examples=[
            OpenApiExample("Reset MFA (lost phone)", value={"resetTOTP": True}, request_only=True),
            OpenApiExample("Unlock", value={"unlock": True}, request_only=True),
        ],
    )

    @extend_schema(summary="Change a user, reset their MFA, unlock them", operation_id="users_update", **_change_schema)
    def put(self, request, tenant_id, user_id):
        return self._change(request)

    @extend_schema(summary="Change a user (same as PUT)", operation_id="users_partial_update", **_change_schema)
    def patch(self, request, tenant_id, user_id):
        return self._change(request)

    @extend_schema(
        tags=USERS_TAG,
        summary="Delete a user", operation_id="users_delete",
        description="The user and their factors go; their refresh tokens stop working; their audit events stay.",
        parameters=[USER_ID],
        responses={204: OpenApiResponse(description="Deleted."), **error_responses(*ADMIN_ERRORS)},
    )
    def delete(self, request, tenant_id, user_id):
        user_delete(user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserEventsView(AdminView):
    pagination_class = NewestFirstPagination
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        user = user_get(tenant=self.tenant, user_id=self.kwargs["user_id"], viewer=self.request.user)
        return audit_event_list(tenant=self.tenant, user=user, viewer=self.request.user)

    @extend_schema(
        tags=USERS_TAG,
        summary="A user's audit events", operation_id="users_events_list",
        description="Sign-ins, failures, lockouts, factor set-ups, resets … newest first, in pages (follow `next`).",
        parameters=[USER_ID],
        responses={200: AuditEventSerializer(many=True), **error_responses("invalid_request", *ADMIN_ERRORS)},
    )
    def get(self, request, tenant_id, user_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)


class SettingsView(AdminView):
    def _answer(self, tenant):
        return Response(SettingsSerializer(tenant).data)

    @extend_schema(
        tags=["Settings"],
        summary="The tenant's MFA and lockout policy", operation_id="settings_get",
        description="The whole policy, as the Settings calls take it.",
        responses={200: SettingsSerializer, **error_responses(*ADMIN_ERRORS)},
    )
    def get(self, request, tenant_id):
        return self._answer(self.tenant)

    def _change(self, request):
        data = _valid(SettingsInput, request)
        return self._answer(tenant_update_policy(tenant=self.tenant, **data.service_kwargs()))

    _change_schema = dict(
        tags=["Settings"],
        request=SettingsInput,
        description="Any of the policy fields; fields left out keep their values. PUT and PATCH are the same. Answers the whole policy.",
        responses={200: SettingsSerializer, **error_responses(*BODY_ERRORS, *ADMIN_ERRORS)},
        examples=[OpenApiExample("Stricter lockout", value={"mfaMaxAttempts": 3, "lockoutSeconds": 900}, request_only=True)],
    )

    @extend_schema(summary="Change the policy", operation_id="settings_update", **_change_schema)
    def put(self, request, tenant_id):
        return self._change(request)

    @extend_schema(summary="Change the policy (same as PUT)", operation_id="settings_partial_update", **_change_schema)
    def patch(self, request, tenant_id):
        return self._change(request)

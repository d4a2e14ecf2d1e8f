"""The REST API under ``/tenant/<tenant_id>/v2/``: thin front doors onto the services.

Sign-in: ``auth/login`` → (``auth/mfa/totp/setup`` | ``auth/mfa/email/send``) →
``auth/mfa/verify`` → tokens; ``auth/token/refresh`` and ``auth/logout``. Admin calls:
``Users``, ``Users/<id>``, ``Users/<id>/events`` and ``Settings``.

A view holds behaviour only; its OpenAPI declaration is one decorator from
``accounts.api.schema``. The input serializers' ``validated_data`` are the keyword
arguments of the service they go to.
"""
from django.http import Http404
from rest_framework import generics, status
from rest_framework.exceptions import APIException, PermissionDenied, UnsupportedMediaType, ValidationError
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import schema as docs
from accounts.api.errors import WrongMfaMethod
from accounts.api.pagination import ApiCursorPagination, NewestFirstPagination
from accounts.api.parsers import LimitedJSONParser
from accounts.api.serializers import (
    AuditEventSerializer,
    ForgotInput,
    LoginInput,
    MfaTokenInput,
    PasswordChangeInput,
    RefreshInput,
    ResetInput,
    SettingsInput,
    SettingsSerializer,
    UserCreateInput,
    UserFilterInput,
    UserSerializer,
    UserUpdateInput,
    VerifyInput,
)
from accounts.api.throttles import AuthRateThrottle
from accounts.audit import RequestContext
from accounts.errors import AuthFailure, EnrollmentNotAllowed, InvalidMfaToken
from accounts.models import MfaMethod
from accounts.selectors import audit_event_list, normalize_username, tenant_and_user_by_username, user_get, user_list
from accounts.services import user_create, user_delete
from accounts.tokens import token_refresh, token_revoke
from flows import pending as pending_sign_in
from flows.manage import user_change
from flows.password import api_change, forgot, link_base, reset
from flows.signin import api_code, api_password
from mfa.setup import enrollment_email_send, enrollment_needed, enrollment_totp_begin, totp_provisioning, with_totp_confirmed
from tenants.selectors import tenant_get
from tenants.services import tenant_update_policy


@docs.tenant_view
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


def _validated(serializer_class, request) -> dict:
    """The body's ``validated_data``: the keyword arguments of the service it goes to."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


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
        pending, user = pending_sign_in.token_user(mfa_token, tenant_id=self.kwargs["tenant_id"])
        if pending is None:
            raise InvalidMfaToken()
        self.tenant = user.tenant
        return pending, user


@docs.login
class SignInView(AuthView):
    """The password step (``password_sign_in``: lockout, then the hash). No second factor:
    tokens. Otherwise an mfaToken; a user with no method where the tenant requires one is
    offered the app (``mfaMethod: "totp"``, ``enrollmentRequired: true``) and may choose
    email instead with ``auth/mfa/email/send`` (see ``EmailSendView``)."""

    tenant_first = False  # read with the user (tenant_and_user_by_username)

    def post(self, request, tenant_id):
        data = _validated(LoginInput, request)
        self.tenant, user = tenant_and_user_by_username(tenant_id=tenant_id, username=data["username"])
        return Response(api_password(tenant=self.tenant, user=user, ctx=self.ctx(), **data))


@docs.totp_setup
class TotpSetupView(AuthView):
    tenant_first = False  # read with the pending user (pending_user)

    def post(self, request, tenant_id):
        pending, user = self.pending_user(**_validated(MfaTokenInput, request))
        if enrollment_needed(user, enroll=pending.enroll) != "setup":
            raise EnrollmentNotAllowed()
        try:
            secret = enrollment_totp_begin(user=user, enroll=pending.enroll)
        except ValueError:  # confirmed in the meantime
            raise EnrollmentNotAllowed() from None
        return Response(totp_provisioning(user=user, secret=secret))


@docs.email_send
class EmailSendView(AuthView):
    """Emails a code to an email user. For a user with no method in a tenant that requires
    one, ``auth/login`` answered ``mfaMethod: "totp", enrollmentRequired: true`` with an mfaToken
    carrying ``enroll="totp"``; calling this instead chooses email. The signed token cannot
    change, so the choice lives in the database (an unexpired emailed code; see
    ``mfa.setup.enrollment_method``) and ``auth/mfa/verify`` then judges an emailed code
    with the same mfaToken. Calling ``auth/mfa/totp/setup`` afterwards chooses the app again.
    """

    tenant_first = False  # read with the pending user (pending_user)

    def post(self, request, tenant_id):
        pending, user = self.pending_user(**_validated(MfaTokenInput, request))
        enrolling = bool(pending.enroll) and user.mfa_method == MfaMethod.NONE
        if user.mfa_method != MfaMethod.EMAIL and not enrolling:
            raise WrongMfaMethod()
        body = enrollment_email_send(user=user, enroll=pending.enroll)
        return Response(body, status=status.HTTP_202_ACCEPTED)


@docs.verify
class VerifyView(AuthView):
    tenant_first = False  # read with the pending user (pending_user)

    def post(self, request, tenant_id):
        data = _validated(VerifyInput, request)
        pending, user = self.pending_user(mfa_token=data["mfa_token"])
        return Response(api_code(pending, user, data["code"], ctx=self.ctx()))


class TokenView(PublicView):
    """Refresh and sign-out, with a refresh token. No per-IP limit: a refresh token is signed
    and single-use, so there is nothing to guess (a forged one costs a signature check, less
    than counting it would), and many users behind one address (a NAT, a backend that
    refreshes for its users) must not spend that address's sign-in attempts. They keep
    working while Redis is down."""


@docs.refresh
class RefreshView(TokenView):
    tenant_first = False  # token_refresh needs only its id

    def post(self, request, tenant_id):
        return Response(token_refresh(tenant_id=tenant_id, ctx=self.ctx(), **_validated(RefreshInput, request)))


@docs.logout
class LogoutView(TokenView):
    def post(self, request, tenant_id):
        token_revoke(tenant=self.tenant, ctx=self.ctx(), **_validated(RefreshInput, request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- password self-service -----------------------------------------------------------------

FORGOT_ANSWER = {"detail": "If that matches an account, a link to set a new password is on its way to its email address."}


@docs.password_forgot
class PasswordForgotView(AuthView):
    """Always the same 202, in the same time: the look-up is the notice worker's
    (``flows.password.forgot``). The per-IP limit of the sign-in calls applies."""

    def post(self, request, tenant_id):
        forgot(request=request, tenant=self.tenant, ctx=self.ctx(), **_validated(ForgotInput, request))
        return Response(FORGOT_ANSWER, status=status.HTTP_202_ACCEPTED)


@docs.password_reset
class PasswordResetView(AuthView):
    """A reset link's token and the new password: 204, and nobody is signed in."""

    def post(self, request, tenant_id):
        reset(tenant=self.tenant, ctx=self.ctx(), **_validated(ResetInput, request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignedInView(TenantAPIView):
    """Any signed-in user of the URL's tenant (a Bearer access token of it)."""

    permission_classes = [IsAuthenticated]


@docs.me
class MeView(SignedInView):
    def get(self, request, tenant_id):
        return Response(UserSerializer(request.user).data)


@docs.me_password
class MePasswordView(SignedInView):
    """The caller's own password: the current one is judged by the one password path (a wrong
    one counts, and can lock); the caller's refresh-token chain stays, every other ends."""

    throttle_classes = [AuthRateThrottle]

    def post(self, request, tenant_id):
        chain = request.auth.get("chain") if request.auth is not None else None
        api_change(user=request.user, ctx=self.ctx(), chain=chain, **_validated(PasswordChangeInput, request))
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


@docs.user_list
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

    def get(self, request, tenant_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(UserSerializer(page, many=True).data)

    def post(self, request, tenant_id):
        user = user_create(tenant=self.tenant, **_validated(UserCreateInput, request))
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@docs.user_detail
class UserDetailView(AdminView):
    def get_object(self):
        return user_get(tenant=self.tenant, user_id=self.kwargs["user_id"], viewer=self.request.user)

    def get(self, request, tenant_id, user_id):
        return Response(UserSerializer(self.get_object()).data)

    def _change(self, request):
        changes = _validated(UserUpdateInput, request)
        user = user_change(user=self.get_object(), actor=request.user, ctx=self.ctx(), link_base=link_base(request), **changes)
        return Response(UserSerializer(user).data)

    def put(self, request, tenant_id, user_id):
        return self._change(request)

    def patch(self, request, tenant_id, user_id):
        return self._change(request)

    def delete(self, request, tenant_id, user_id):
        user_delete(user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@docs.user_events
class UserEventsView(AdminView):
    pagination_class = NewestFirstPagination
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        user = user_get(tenant=self.tenant, user_id=self.kwargs["user_id"], viewer=self.request.user)
        return audit_event_list(tenant=self.tenant, user=user, viewer=self.request.user)

    def get(self, request, tenant_id, user_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)


@docs.tenant_settings
class SettingsView(AdminView):
    def _answer(self, tenant):
        return Response(SettingsSerializer(tenant).data)

    def get(self, request, tenant_id):
        return self._answer(self.tenant)

    def _change(self, request):
        return self._answer(tenant_update_policy(tenant=self.tenant, **_validated(SettingsInput, request)))

    def put(self, request, tenant_id):
        return self._change(request)

    def patch(self, request, tenant_id):
        return self._change(request)

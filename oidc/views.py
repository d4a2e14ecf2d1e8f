"""Each tenant's OpenID Provider endpoints: a thin layer that resolves the tenant of the URL
and hands the request to django-oauth-toolkit's own views.

``TenantOAuthLibMixin.get_oauthlib_core`` gives every request a server whose validator
knows the tenant and the request (``oidc.validators.TenantOAuth2Validator``): DOT's
``OAuthLibMixin`` documents ``get_server``/``get_oauthlib_core`` as the place to choose
them, and a per-request validator is the only way to scope clients, the issuer and the
signing key by tenant (DOT's own settings are project-wide). Discovery and the JWKS are
small views of our own, because DOT's read the project-wide ``OIDC_RSA_PRIVATE_KEY``.
"""
import base64
import binascii
from datetime import datetime, timezone as dt_timezone
from http import HTTPStatus
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.exceptions import ClientIdMissmatch, InvalidIDTokenError, InvalidOIDCClientError, OAuthToolkitError
from oauth2_provider.models import get_id_token_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView, RevokeTokenView, RPInitiatedLogoutView, TokenView, UserInfoView
from oauthlib.oauth2.rfc6749.errors import InvalidClientIdError, InvalidRequestError

from accounts.audit import RequestContext
from accounts.ratelimit import RateLimitUnavailable, client_hit, client_refund
from accounts.services import sign_out_record
from accounts.views import signed_in_here
from flows.pending import AMR_SESSION_KEY, AUTH_TIME_SESSION_KEY
from oidc.selectors import client_get_or_none
from oidc.tokens import access_token_generator
from oidc.validators import TenantOAuth2Validator
from tenants.mixins import TenantMixin
from tenants.signing import InvalidJWT, issuer_url, jwks, jwt_signed_claims, signing_algorithms_published, signing_key_current

SCOPES_SUPPORTED = ["openid", "profile", "email"]
SCOPE_LABELS = {
    "openid": _("Sign you in with your account"),
    "profile": _("See your username"),
    "email": _("See your email address"),
}
CLAIMS_SUPPORTED = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "preferred_username", "email", "email_verified"]


def tenant_issuer(request, tenant_id: str) -> str:
    return issuer_url(origin=request.build_absolute_uri("/"), tenant_id=tenant_id)


def allow_form_action_to(response, uri: str | None):
    """The page's Content-Security-Policy with its form's redirect target allowed: browsers
    apply ``form-action`` to the redirect that answers a form, and the consent and sign-out
    forms answer with a redirect to the client's (registered, already checked) URI."""
    if not uri:
        return response
    parts = urlsplit(uri)
    source = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
    if not parts.scheme or any(ch in source for ch in " ;,'\"\n"):
        return response
    policy = settings.CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {source}")
    response.headers["Content-Security-Policy"] = policy
    return response


def carries_nul(request) -> bool:
    """A NUL character in a parameter or in Basic credentials: no client id, code or token
    holds one, and PostgreSQL refuses it in a query (DOT would answer a 500)."""
    for params in (request.GET, request.POST):
        if any("\x00" in value for values in params.lists() for value in values[1]) or any("\x00" in key for key in params):
            return True
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return b"\x00" in decoded or b"%00" in decoded
    return "\x00" in auth


class TenantOAuthLibMixin(TenantMixin):
    """``self.tenant`` from the URL (404 when unknown) and DOT's server with a validator of
    that tenant and a generator of its access tokens (``oidc.tokens``), made for this
    request. A request carrying a NUL character is refused with the OAuth
    ``invalid_request`` error before DOT sees it."""

    def dispatch(self, request, *args, **kwargs):
        if carries_nul(request):
            return self.nul_refused()
        return super().dispatch(request, *args, **kwargs)

    def nul_refused(self):
        return JsonResponse({"error": "invalid_request", "error_description": "A parameter holds a NUL character."}, status=400)

    def get_oauthlib_core(self):
        validator = TenantOAuth2Validator(tenant=self.tenant, http_request=self.request)
        token_generator = access_token_generator(tenant_id=self.tenant.pk, issuer=tenant_issuer(self.request, self.tenant.pk))
        server = self.get_server_class()(validator, **{**oauth2_settings.server_kwargs, "token_generator": token_generator})
        return self.get_oauthlib_backend_class()(server)


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(TenantOAuthLibMixin, AuthorizationView):
    """The authorization endpoint: people sign in through the tenant's own pages (password,
    then the factor the tenant requires), then see the consent page unless the client skips
    it. ``prompt=login`` and a ``max_age`` older than this browser's sign-in end the
    session and send the person through the sign-in again."""

    template_name = "oidc/authorize.html"

    def get_login_url(self):
        return reverse("accounts:login", kwargs={"tenant_id": self.tenant.pk})

    def nul_refused(self):
        self.oauth2_data = {}
        return self.render_to_response(self.get_context_data(error=InvalidRequestError(description="A parameter holds a NUL character.")), status=400)

    def dispatch(self, request, *args, **kwargs):
        self.oauth2_data = {}
        if request.user.is_authenticated and not signed_in_here(request, self.tenant):
            # Signed in to another tenant: here, that is no one (the sign-in page replaces
            # that session when the person signs in here).
            if set(request.GET.get("prompt", "").split()) & {"none", "login"}:
                return self.handle_no_permission()
            return redirect_to_login(request.get_full_path(), self.get_login_url(), "next")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        if signed_in_here(request, self.tenant) and self.sign_in_again_needed(request):
            try:
                self.validate_authorization_request(request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            sign_out_record(user=request.user, ctx=RequestContext.from_request(request, channel="oidc"))
            logout(request)
            return redirect_to_login(self.path_without(request, "prompt", "max_age"), self.get_login_url(), "next")
        return super().get(request, *args, **kwargs)

    @staticmethod
    def sign_in_again_needed(request) -> bool:
        if "login" in request.GET.get("prompt", "").split():
            return True
        max_age = request.GET.get("max_age", "")
        if not max_age.isdigit() or len(max_age) > 10:
            return False
        auth_time = request.session.get(AUTH_TIME_SESSION_KEY)
        return not isinstance(auth_time, int) or datetime.now(dt_timezone.utc).timestamp() - auth_time > int(max_age)

    @staticmethod
    def path_without(request, *names: str) -> str:
        """This request's path and query, without the parameters ``names`` (the sign-in
        they asked for is the one about to happen)."""
        parts = urlsplit(request.get_full_path())
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
        return f"{parts.path}?{urlencode(query)}"

    def create_authorization_response(self, request, scopes, credentials, allow):
        """DOT's, with the sign-in's facts handed to the validator."""
        auth_time = request.session.get(AUTH_TIME_SESSION_KEY)
        credentials["gatehouse_amr"] = list(request.session.get(AMR_SESSION_KEY) or [])
        credentials["gatehouse_auth_time"] = (
            datetime.fromtimestamp(auth_time, tz=dt_timezone.utc) if isinstance(auth_time, int) else request.user.last_login
        )
        return super().create_authorization_response(request, scopes, credentials, allow)

    def redirect(self, redirect_to, application):
        """Every answer sent back to the client's (registered) redirect URI, a code or an error
        alike, names the tenant's issuer (RFC 9207 ``iss``: a client talking to several issuers
        knows which one answered)."""
        parts = urlsplit(redirect_to)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
        query.append(("iss", tenant_issuer(self.request, self.tenant.pk)))
        return super().redirect(parts._replace(query=urlencode(query)).geturl(), application)

    def form_valid(self, form):
        if client_get_or_none(tenant_id=self.tenant.pk, client_id=form.cleaned_data.get("client_id")) is None:
            return self.render_to_response(self.get_context_data(error=InvalidClientIdError()), status=400)
        return super().form_valid(form)

    def get_context_data(self, **kwargs):
        scopes = kwargs.get("scopes") or self.oauth2_data.get("scopes") or []
        return super().get_context_data(scope_labels=[SCOPE_LABELS.get(s, s) for s in scopes], **kwargs)

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form, error=InvalidClientIdError()), status=400)

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        return response if context.get("error") else allow_form_action_to(response, context.get("redirect_uri"))


class FailedCallsRateLimitMixin:
    """The per-IP limit of the sign-in calls (``accounts.ratelimit``, the same budget as the
    sign-in pages and API) on a client-to-server endpoint, where only calls that fail spend it: a
    relying party's server calls these endpoints for all its users from one address, so
    counting every call would throttle it, while a guesser of codes, secrets or tokens is
    refused on almost every call.

    Every call counts itself before anything is judged, so parallel calls cannot all slip in
    under the limit; over it the call is refused with 429 and nothing is judged (no code,
    secret or token is looked at, so a valid one is not used up). Any answer but a success
    keeps its count (an OAuth error, a NUL refused by ``TenantOAuthLibMixin``); a success
    takes it back. RFC 6749 has no error code for a rate limit: 429 says ``rate_limited``, as
    the REST API does.

    With the cache unreachable the call is judged without the limit (where the sign-in pages
    fail closed): nothing judged here can be guessed (random codes bound to a PKCE verifier or
    a client secret, random tokens), so refusing would only stop every relying party's
    refreshes and userinfo calls for the outage, which the REST API's refresh outlives too.
    New sign-ins still wait for the cache: they go through the sign-in pages."""

    def dispatch(self, request, *args, **kwargs):
        try:
            verdict = client_hit(request=request)
        except RateLimitUnavailable:  # logged by client_hit
            return super().dispatch(request, *args, **kwargs)
        if not verdict.allowed:
            response = JsonResponse({
                "error": "rate_limited",
                "error_description": "Too many refused requests from this address. Try again after the time given in Retry-After.",
            }, status=HTTPStatus.TOO_MANY_REQUESTS)
            response["Retry-After"] = str(verdict.retry_after)
            return response
        response = super().dispatch(request, *args, **kwargs)
        if 200 <= response.status_code < 300:
            client_refund(verdict=verdict)
        return response


# Client-to-server endpoints: no CSRF (DOT's views are exempt; our mixin's dispatch replaces
# theirs, so it is said again here). The token request's judgement and answer are one
# transaction (``post``, inside the rate limit): a refresh holds the user's row lock from its
# judgement to its new tokens (``TenantOAuth2Validator.validate_refresh_token``), and a success
# takes its count back only once its tokens are committed.
@method_decorator([csrf_exempt, never_cache], name="dispatch")
@method_decorator(transaction.atomic, name="post")
class TenantTokenView(FailedCallsRateLimitMixin, TenantOAuthLibMixin, TokenView):
    pass


@method_decorator(csrf_exempt, name="dispatch")
class TenantRevokeTokenView(FailedCallsRateLimitMixin, TenantOAuthLibMixin, RevokeTokenView):
    pass


@method_decorator(csrf_exempt, name="dispatch")
class TenantUserInfoView(FailedCallsRateLimitMixin, TenantOAuthLibMixin, UserInfoView):
    pass


@method_decorator(never_cache, name="dispatch")
class TenantLogoutView(TenantMixin, RPInitiatedLogoutView):
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), within the tenant: the
    client and the ID token hint must be this tenant's."""

    template_name = "oidc/logout_confirm.html"

    def dispatch(self, request, *args, **kwargs):
        if carries_nul(request):
            self.oidc_data = {}
            return self.render_to_response({"error": InvalidRequestError(description="A parameter holds a NUL character.")}, status=400)
        return super().dispatch(request, *args, **kwargs)

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        if context.get("error"):
            return response
        return allow_form_action_to(response, self.oidc_data.get("post_logout_redirect_uri"))

    def get_request_application(self, id_token, client_id):
        if client_id:
            application = client_get_or_none(tenant_id=self.tenant.pk, client_id=client_id)
            if application is None:
                raise InvalidOIDCClientError()
            return application
        if id_token:
            return id_token.application

    def validate_logout_request_user(self, id_token_hint, client_id):
        """The ID token hint, verified with the tenant's published keys (so one signed before
        a key rotation still counts; DOT's own check knows only the current key), issued by
        this tenant's issuer as seen on this host, of one of this tenant's clients (and of
        ``client_id`` when given). Expired hints are accepted, as DOT does by default."""
        if not id_token_hint:
            return None
        try:
            claims = jwt_signed_claims(id_token_hint, tenant_id=self.tenant.pk, verify_exp=False)
        except InvalidJWT:
            raise InvalidIDTokenError() from None
        id_token = (
            get_id_token_model().objects.select_related("application", "user")
            .filter(jti=str(claims.get("jti")), application__tenant_id=self.tenant.pk).first()
        )
        if id_token is None or claims["iss"] != tenant_issuer(self.request, self.tenant.pk):
            raise InvalidIDTokenError()
        if client_id and id_token.application.client_id != client_id:
            raise ClientIdMissmatch()
        return id_token

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        if signed_in_here(self.request, self.tenant):
            sign_out_record(user=self.request.user, ctx=RequestContext.from_request(self.request, channel="oidc"))
        response = super().do_logout(application, post_logout_redirect_uri, state, token_user)
        if not post_logout_redirect_uri:
            return HttpResponseRedirect(reverse("accounts:login", kwargs={"tenant_id": self.tenant.pk}))
        return response


class DiscoveryView(TenantMixin, View):
    """``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 §4)."""

    def get(self, request, *args, **kwargs):
        tid = self.tenant.pk

        def url(name):
            return request.build_absolute_uri(reverse(f"oidc:{name}", kwargs={"tenant_id": tid}))

        data = {
            "issuer": tenant_issuer(request, tid),
            "authorization_endpoint": url("authorize"),
            "token_endpoint": url("token"),
            "userinfo_endpoint": url("userinfo"),
            "revocation_endpoint": url("revoke"),
            "end_session_endpoint": url("logout"),
            "jwks_uri": request.build_absolute_uri(reverse("oidc-wellknown:jwks", kwargs={"tenant_id": tid})),
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": signing_algorithms_published(tenant_id=tid),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": CLAIMS_SUPPORTED,
            "prompt_values_supported": ["none", "login", "consent"],
            "acr_values_supported": ["urn:gatehouse:acr:pwd", "urn:gatehouse:acr:mfa"],
            "authorization_response_iss_parameter_supported": True,
        }
        response = JsonResponse(data)
        response["Access-Control-Allow-Origin"] = "*"
        return response


class JwksView(TenantMixin, View):
    """``/.well-known/jwks.json``: the tenant's signing keys that may still have live tokens."""

    def get(self, request, *args, **kwargs):
        signing_key_current(tenant_id=self.tenant.pk)  # a tenant made before keys existed gets its first
        response = JsonResponse(jwks(tenant_id=self.tenant.pk))
        response["Access-Control-Allow-Origin"] = "*"
        response["Cache-Control"] = f"public, max-age={oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS}"
        return response

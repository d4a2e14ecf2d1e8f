"""django-oauth-toolkit's request validator, made per tenant.

``oidc.views`` builds one validator per request with the tenant of the URL and the Django
request (``TenantOAuthLibMixin.get_oauthlib_core``, DOT's documented way to choose the
server and validator of a view). On top of DOT's own checks:

- **Clients**: a client is found only in the URL's tenant. DOT looks the client up by
  ``client_id`` alone; each public hook that loads one (``validate_client_id``,
  ``authenticate_client``, ``authenticate_client_id``, ``client_authentication_required``)
  is answered "no such client" when the client found belongs to another tenant, so codes,
  tokens and refresh tokens of one tenant (all bound to their client by DOT) are refused
  on every other tenant's endpoints. ``validate_bearer_token`` (userinfo) checks the
  token's client's tenant the same way.
- **Issuer**: ``SCHEME://HOST/tenant/ID`` (``get_oidc_issuer_endpoint``).
- **Signing key**: ID tokens are signed by ``tenants.signing`` like every other JWT of the
  tenant: its current key, RS256 or ES256, ``kid`` in the header (``finalize_id_token``).
- **PKCE**: required for public clients; S256 only (DOT's BCP gate refuses ``plain``).
- **Sign-in facts**: the authorize view hands ``amr``, ``acr`` and ``auth_time`` in the
  credentials; ``save_authorization_code`` stores them on the code (``oidc.Grant``), and
  the ID token carries them (``get_id_token_dictionary``).
- **Code replay** (RFC 6749 §4.1.2): a code is marked used rather than deleted; a second
  exchange is ``invalid_grant`` and revokes the tokens the first one minted.
- Refreshing does not mint a new ID token (``refresh_id_token``): OpenID Connect Core
  §12.2 allows it, and a refreshed ID token could not state a new ``auth_time`` honestly.
"""
import hashlib

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import get_id_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from accounts.models import User
from oidc.models import Application, Grant
from tenants.signing import issuer_url, jwt_sign

ACR_MFA = "urn:gatehouse:acr:mfa"
ACR_PASSWORD = "urn:gatehouse:acr:pwd"


def acr_for(amr: list[str]) -> str:
    return ACR_MFA if "mfa" in amr else ACR_PASSWORD


class TenantOAuth2Validator(OAuth2Validator):
    # Standard claims → the scope that releases them (OpenID Connect Core §5.4).
    oidc_claim_scope = {"sub": "openid", "preferred_username": "profile", "email": "email", "email_verified": "email"}

    def __init__(self, *, tenant=None, http_request: HttpRequest | None = None):
        super().__init__()
        self.tenant = tenant
        self.http_request = http_request

    # --- clients: only the URL's tenant's ---------------------------------------------------

    def _of_tenant(self, request) -> bool:
        """Whether the client DOT loaded on ``request`` is the URL's tenant's; if not, it is
        forgotten, so nothing later uses it."""
        client = getattr(request, "client", None)
        if self.tenant is not None and isinstance(client, Application) and client.tenant_id == self.tenant.pk:
            return True
        request.client = None
        return False

    def validate_client_id(self, client_id, request, *args, **kwargs):
        return super().validate_client_id(client_id, request, *args, **kwargs) and self._of_tenant(request)

    def authenticate_client(self, request, *args, **kwargs):
        return super().authenticate_client(request, *args, **kwargs) and self._of_tenant(request)

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        return super().authenticate_client_id(client_id, request, *args, **kwargs) and self._of_tenant(request)

    def client_authentication_required(self, request, *args, **kwargs):
        required = super().client_authentication_required(request, *args, **kwargs)
        if getattr(request, "client", None) is not None and not self._of_tenant(request):
            return True  # another tenant's client: it must authenticate here, and cannot
        return required

    def validate_bearer_token(self, token, scopes, request):
        if not super().validate_bearer_token(token, scopes, request):
            return False
        access_token = getattr(request, "access_token", None)
        application = getattr(access_token, "application", None)
        if self.tenant is None or application is None or application.tenant_id != self.tenant.pk:
            request.oauth2_error = {"error": "invalid_token"}
            return False
        return True

    # --- prompt=none (OpenID Connect Core §3.1.2.6) ------------------------------------------

    def validate_silent_login(self, request):
        user = getattr(self.http_request, "user", None)
        return bool(self.tenant is not None and user is not None and user.is_authenticated and user.tenant_id == self.tenant.pk)

    def validate_silent_authorization(self, request):
        client = getattr(request, "client", None)
        return bool(client is not None and client.skip_authorization)

    # --- PKCE ---------------------------------------------------------------------------------

    def is_pkce_required(self, client_id, request):
        client = getattr(request, "client", None)
        return client is None or client.client_type == Application.CLIENT_PUBLIC

    # --- the issuer -----------------------------------------------------------------------------

    def get_oidc_issuer_endpoint(self, request):
        if self.tenant is not None and self.http_request is not None:
            return issuer_url(origin=self.http_request.build_absolute_uri("/"), tenant_id=self.tenant.pk)
        # DOT's RP-initiated logout builds a validator without arguments and passes the Django request.
        if isinstance(request, HttpRequest) and request.resolver_match and "tenant_id" in request.resolver_match.kwargs:
            return issuer_url(origin=request.build_absolute_uri("/"), tenant_id=request.resolver_match.kwargs["tenant_id"])
        return super().get_oidc_issuer_endpoint(request)

    # --- claims ---------------------------------------------------------------------------------

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.username,
            "email": user.email,
            "email_verified": user.email_verified_at is not None,
        }

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        amr = getattr(request, "gatehouse_amr", None)
        if amr:
            claims["amr"] = list(amr)
            claims["acr"] = acr_for(amr)
        auth_time = getattr(request, "gatehouse_auth_time", None)
        if auth_time is not None:
            claims["auth_time"] = int(auth_time.timestamp())
        return claims, expiration_time

    def refresh_id_token(self, request):
        return False

    def finalize_id_token(self, id_token, token, token_handler, request):
        """DOT's steps (the claims, the nonce, the ``IDToken`` row that links the access token
        to it), but signed by ``tenants.signing.jwt_sign``: DOT's own signs with the client's
        one algorithm and names the ``kid`` for RS256 only, where a tenant may sign with ES256."""
        claims, expires = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:  # oauthlib does not always copy it (DOT does the same)
            id_token["nonce"] = request.nonce
        signed = jwt_sign(tenant_id=self.tenant.pk, claims=id_token)
        record = get_id_token_model().objects.create(
            user=request.user, scope=request.scope or " ".join(request.scopes), expires=expires,
            jti=id_token["jti"], application=request.client,
        )
        request.access_token = request.id_token = record  # what DOT's token saving reads next
        return signed

    # --- codes: the sign-in facts, and replay ---------------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        super().save_authorization_code(client_id, code, request, *args, **kwargs)
        amr = list(getattr(request, "gatehouse_amr", None) or [])
        Grant.objects.filter(code=code["code"], application=request.client).update(
            amr=amr, acr=acr_for(amr), auth_time=getattr(request, "gatehouse_auth_time", None)
        )

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = Grant.objects.filter(code=code, application=client).first()
        if grant is not None and grant.used_at is not None:
            _revoke_family(grant.token_family)
            return False
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        request.gatehouse_amr = grant.amr
        request.gatehouse_auth_time = grant.auth_time
        return True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        """DOT's checks, then the same again under the user's row lock, which a password change
        or an MFA reset takes too (``accounts.tokens.refresh_tokens_revoke``). The token view
        runs in one transaction, so the lock holds until the new tokens are saved: a refresh
        racing such a change either finished first (its new tokens are revoked there) or finds
        the presented token revoked here and mints nothing."""
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        User.objects.select_for_update().filter(pk=request.user.pk).first()
        presented = request.refresh_token_instance
        return not get_refresh_token_model().objects.filter(pk=presented.pk, revoked__isnull=False).exists()

    def save_bearer_token(self, token, request, *args, **kwargs):
        super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code":
            request.gatehouse_token_family = _family_of_token(token)

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        """Mark the code used and remember the token family it began; a code used in the
        meantime (two exchanges racing) ends both exchanges' tokens."""
        family = getattr(request, "gatehouse_token_family", None)
        with transaction.atomic():
            marked = Grant.objects.filter(code=code, application=request.client, used_at__isnull=True).update(
                used_at=timezone.now(), token_family=family
            )
            if not marked:
                _revoke_family(family)
                _revoke_family(Grant.objects.filter(code=code, application=request.client).values_list("token_family", flat=True).first())
                raise errors.InvalidGrantError(request=request)


def _family_of_token(token: dict):
    """The refresh-token family of a token response (DOT gives a new refresh token one)."""
    raw = token.get("refresh_token")
    if not raw:
        return None
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    return get_refresh_token_model().objects.filter(token_checksum=checksum).values_list("token_family", flat=True).first()


def _revoke_family(family) -> None:
    if family:
        get_refresh_token_model().revoke_family(family)

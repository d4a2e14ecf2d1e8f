"""Bearer JWTs for the API, bound to the tenant of the URL.

``accounts.tokens.access_token_claims`` verifies the token with the URL's tenant's own
signing keys (``tenants.signing``: the key named by ``kid``, its algorithm only — PyJWT
refuses ``alg: none`` and every other algorithm), its expiry, its type and its tenant
(``tid``). Its user is looked up by tenant and id together.
"""
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.selectors import user_get_or_none
from accounts.tokens import access_token_claims
from tenants.models import Tenant
from django.utils.translation import gettext_lazy as _
from tenants.signing import InvalidJWT


class TenantJWTAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if len(parts) != 2 or parts[0].lower() != self.keyword:
            raise exceptions.AuthenticationFailed(_("Send the access token as 'Authorization: Bearer <token>'."), code="invalid_token")
        context = request.parser_context or {}
        tenant_id = context.get("kwargs", {}).get("tenant_id")
        try:
            raw = parts[1].decode("ascii")
            claims = access_token_claims(raw, tenant_id=tenant_id) if tenant_id else None
        except (UnicodeDecodeError, InvalidJWT):
            claims = None
        if claims is None:
            raise exceptions.AuthenticationFailed(_("The access token is invalid or expired for this tenant."), code="invalid_token")
        # The API's views resolve the URL's tenant before authenticating (404 when unknown).
        tenant = getattr(context.get("view"), "tenant", None) or Tenant.objects.filter(pk=tenant_id).first()
        user = user_get_or_none(tenant=tenant, user_id=claims.get("sub")) if tenant else None
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(_("The user of this token does not exist or is inactive."), code="invalid_token")
        return user, claims

    def authenticate_header(self, request):
        return 'Bearer realm="gatehouse"'

"""Bearer JWTs for the API, bound to the tenant of the URL.

simplejwt checks the signature with the one configured algorithm (PyJWT refuses
``alg: none`` and every other algorithm), the expiry and the token type. On top of that a
token is valid only on its own tenant's URLs (``tid``), and its user is looked up by
tenant and id together.
"""
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.selectors import user_get_or_none
from tenants.models import Tenant
from django.utils.translation import gettext_lazy as _


class TenantJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        if raw is None:
            raise exceptions.AuthenticationFailed(_("Send the access token as 'Authorization: Bearer <token>'."), code="invalid_token")
        try:
            token = self.get_validated_token(raw)
        except (InvalidToken, TokenError):
            raise exceptions.AuthenticationFailed(_("The access token is invalid or expired."), code="invalid_token") from None
        context = request.parser_context or {}
        tenant_id = context.get("kwargs", {}).get("tenant_id")
        if not tenant_id or token.get("tid") != tenant_id:
            raise exceptions.AuthenticationFailed(_("This token is not valid for this tenant."), code="invalid_token")
        # The API's views resolve the URL's tenant before authenticating (404 when unknown).
        tenant = getattr(context.get("view"), "tenant", None) or Tenant.objects.filter(pk=tenant_id).first()
        user = user_get_or_none(tenant=tenant, user_id=token.get("sub")) if tenant else None
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(_("The user of this token does not exist or is inactive."), code="invalid_token")
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="gatehouse"'

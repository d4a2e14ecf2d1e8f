"""The OpenID Provider's access tokens: JWTs of RFC 9068 ("JSON Web Token Profile for OAuth
2.0 Access Tokens"), signed with the tenant's key like every other JWT of the tenant.

A relying party's own API can then check an access token with the tenant's JWKS alone, as
it checks an ID token, without calling Gatehouse for each request (Keycloak's and Auth0's
access tokens are JWTs for the same reason). Gatehouse itself still judges the token it is
shown by its stored checksum (django-oauth-toolkit's ``AccessToken``), so at userinfo a
revoked token is refused at once; a JWT checked elsewhere stays valid until its ``exp``
(``ACCESS_TOKEN_SECONDS``, five minutes by default).

``TenantOAuthLibMixin.get_oauthlib_core`` hands ``access_token_jwt``, bound to the URL's
tenant and its issuer, to the server it builds for each request (oauthlib's
``token_generator``, which django-oauth-toolkit documents for signed tokens); oauthlib calls it
with its own request once the grant was judged, when the client, user and scopes are known.
"""
import time
from functools import partial

from django.conf import settings

from tenants.signing import jti_new, jwt_sign

# RFC 9068 §2.1: the media type of the header, so a JWT access token cannot pass for an ID
# token or for one of the REST API's tokens, and the reverse.
ACCESS_TOKEN_TYP = "at+jwt"


def access_token_generator(*, tenant_id: str, issuer: str):
    """oauthlib's ``token_generator`` for one token request of ``tenant_id``."""
    return partial(access_token_jwt, tenant_id=tenant_id, issuer=issuer)


def access_token_jwt(request, *, tenant_id: str, issuer: str) -> str:
    """The access token for oauthlib's ``request``: ``iss``, ``sub`` (the user id), ``aud``
    and ``client_id`` (the client: its own API is the audience), ``scope``, ``iat``, ``exp``,
    ``jti``."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": str(request.user.pk),
        "aud": request.client.client_id,
        "client_id": request.client.client_id,
        "scope": " ".join(request.scopes or []),
        "iat": now,
        "exp": now + settings.ACCESS_TOKEN_SECONDS,
        "jti": jti_new(),
    }
    return jwt_sign(tenant_id=tenant_id, claims=claims, typ=ACCESS_TOKEN_TYP)

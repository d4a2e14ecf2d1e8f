"""Driving a tenant's OpenID Provider with Django's test client, as a relying party would."""
import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from oidc.models import Application
from oidc.services import client_create
from tests.accounts.flows import code_now, verify_url
from tests.conftest import PASSWORD

REDIRECT = "https://rp.example/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def make_client(tenant, *, client_type=Application.CLIENT_PUBLIC, skip=True, **extra):
    return client_create(
        tenant=tenant, name=extra.pop("name", "Relying Party"), client_type=client_type, redirect_uris=[REDIRECT],
        post_logout_redirect_uris=["https://rp.example/"], allowed_origins=extra.pop("allowed_origins", ["https://rp.example"]),
        skip_authorization=skip, **extra,
    )


def authorize_url(tenant_id: str, client_id: str, challenge: str | None, **params) -> str:
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid profile email",
        "state": "st-1", "nonce": "n-1", **params,
    }
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    return f"/tenant/{tenant_id}/oauth/authorize/?{urlencode({k: v for k, v in query.items() if v is not None})}"


def callback_params(response) -> dict:
    location = response["Location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(client, tenant_id: str, username: str, *, next_url: str, secret: str | None = None):
    """The tenant's sign-in pages (password, then the app's code when ``secret``), ending on
    the redirect back to ``next_url``."""
    response = client.post(f"/tenant/{tenant_id}/login/?{urlencode({'next': next_url})}", {"username": username, "password": PASSWORD})
    if secret is not None:
        assert response["Location"].startswith(verify_url(tenant_id)), response["Location"]
        response = client.post(verify_url(tenant_id), {"code": code_now(secret)})
    assert response.status_code == 302 and response["Location"] == next_url, (response.status_code, response.get("Location"))
    return response


def code_for(client, tenant_id: str, client_id: str, challenge: str, **params) -> dict:
    """Through the authorize endpoint (already signed in) to the callback's parameters."""
    response = client.get(authorize_url(tenant_id, client_id, challenge, **params))
    assert response.status_code == 302, response.content[:500]
    return callback_params(response)


def exchange(client, tenant_id: str, client_id: str, code: str, verifier: str | None, *, secret: str | None = None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id, **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    if secret is not None:
        data["client_secret"] = secret
    return client.post(f"/tenant/{tenant_id}/oauth/token/", data)


def verify_id_token(client, tenant_id: str, token: str, *, audience: str) -> dict:
    """Verified as a relying party would: the key from the tenant's JWKS by ``kid``."""
    keys = client.get(f"/tenant/{tenant_id}/.well-known/jwks.json").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    (key,) = [k for k in keys if k["kid"] == kid]
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=[key["alg"]], audience=audience,
                      issuer=f"http://testserver/tenant/{tenant_id}")

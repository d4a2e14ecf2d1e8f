"""A tenant's OpenID Provider through Django's test client: the code flow with PKCE, the
ID token's claims, userinfo, refresh, revocation, logout, and the bad inputs of issue 20."""
import re
from http import HTTPStatus
from urllib.parse import urlencode

import jwt
import pytest

from accounts.models import MfaMethod
from oidc.models import Application, Grant
from tests.accounts.flows import verify_url
from tests.conftest import FIXED_SECRET, PASSWORD
from tests.oidc.helpers import (
    REDIRECT, authorize_url, callback_params, code_for, exchange, make_client, pkce_pair, sign_in, verify_id_token,
)


@pytest.fixture
def rp(tenant):
    client, _ = make_client(tenant)
    return client


def full_sign_in(client, tenant_id, rp, *, username="tina", secret=FIXED_SECRET, **params):
    verifier, challenge = pkce_pair()
    url = authorize_url(tenant_id, rp.client_id, challenge, **params)
    response = client.get(url)
    assert response.status_code == HTTPStatus.FOUND and f"/tenant/{tenant_id}/login/" in response["Location"]
    sign_in(client, tenant_id, username, next_url=url, secret=secret)
    params_back = callback_params(client.get(url))
    assert params_back["state"] == "st-1" and params_back["iss"] == f"http://testserver/tenant/{tenant_id}"  # RFC 9207
    return verifier, params_back["code"]


def test_discovery_names_the_tenants_endpoints(client, tenant):
    data = client.get("/tenant/acme/.well-known/openid-configuration").json()
    assert data["issuer"] == "http://testserver/tenant/acme"
    assert data["authorization_endpoint"] == "http://testserver/tenant/acme/oauth/authorize/"
    assert data["jwks_uri"] == "http://testserver/tenant/acme/.well-known/jwks.json"
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert client.get("/tenant/ghost/.well-known/openid-configuration").status_code == HTTPStatus.NOT_FOUND


def test_code_flow_with_totp_gives_an_id_token_with_amr_acr_auth_time_nonce(client, tenant, totp_user, rp):
    verifier, code = full_sign_in(client, "acme", rp)
    response = exchange(client, "acme", rp.client_id, code, verifier)
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    claims = verify_id_token(client, "acme", body["id_token"], audience=rp.client_id)
    assert claims["sub"] == str(totp_user.pk)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:gatehouse:acr:mfa"
    assert claims["nonce"] == "n-1" and isinstance(claims["auth_time"], int)
    info = client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.status_code == HTTPStatus.OK
    assert info.json() == {"sub": str(totp_user.pk), "preferred_username": "tina", "email": "tina@example.com", "email_verified": False}
    refreshed = client.post("/tenant/acme/oauth/token/", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": rp.client_id})
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    # Rotation: the old refresh token is dead, and presenting it again ends the family.
    again = client.post("/tenant/acme/oauth/token/", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": rp.client_id})
    assert again.status_code == HTTPStatus.BAD_REQUEST and again.json()["error"] == "invalid_grant"
    newest = refreshed.json()
    assert client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {newest['access_token']}").status_code == HTTPStatus.UNAUTHORIZED


def test_revocation_ends_the_refresh_token(client, tenant, totp_user, rp):
    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    response = client.post("/tenant/acme/oauth/revoke/", {"token": body["refresh_token"], "client_id": rp.client_id})
    assert response.status_code == HTTPStatus.OK
    refreshed = client.post("/tenant/acme/oauth/token/", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": rp.client_id})
    assert refreshed.json()["error"] == "invalid_grant"


def test_password_only_user_gets_amr_pwd(client, tenant, user, rp):
    verifier, code = full_sign_in(client, "acme", rp, username="alice", secret=None)
    claims = verify_id_token(client, "acme", exchange(client, "acme", rp.client_id, code, verifier).json()["id_token"], audience=rp.client_id)
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:gatehouse:acr:pwd"


def test_consent_page_shows_the_client_and_scopes_unless_skipped(client, tenant, user):
    rp, _ = make_client(tenant, skip=False, name="Photo Album")
    verifier, challenge = pkce_pair()
    url = authorize_url("acme", rp.client_id, challenge)
    sign_in(client, "acme", "alice", next_url=url, secret=None) if client.get(url).status_code == 302 else None
    page = client.get(url)
    assert page.status_code == HTTPStatus.OK
    text = page.content.decode()
    assert "Photo Album" in text and "See your email address" in text
    form = page.context["form"].initial
    data = {k: v for k, v in form.items() if v is not None}
    denied = client.post(url, data)
    assert callback_params(denied)["error"] == "access_denied"
    assert callback_params(denied)["iss"] == "http://testserver/tenant/acme"  # RFC 9207
    allowed = client.post(url, {**data, "allow": "Authorize"})
    assert "code" in callback_params(allowed)


def test_logout_ends_the_session_and_the_tokens(client, tenant, totp_user, rp):
    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    response = client.get("/tenant/acme/oauth/logout/", {"id_token_hint": body["id_token"], "post_logout_redirect_uri": "https://rp.example/", "state": "bye"})
    assert response.status_code == HTTPStatus.FOUND and response["Location"] == "https://rp.example/?state=bye"
    assert client.get("/tenant/acme/account/").status_code == HTTPStatus.FOUND  # signed out
    assert client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == HTTPStatus.UNAUTHORIZED


def test_email_code_user_signs_in_through_the_email_step(client, tenant, email_user, rp, mailoutbox):
    verifier, challenge = pkce_pair()
    url = authorize_url("acme", rp.client_id, challenge)
    client.post(f"/tenant/acme/login/?{urlencode({'next': url})}", {"username": email_user.username, "password": PASSWORD})
    client.get(verify_url("acme"))
    code = re.search(r"\b(\d{6})\b", mailoutbox[-1].body).group(1)
    response = client.post(verify_url("acme"), {"code": code})
    assert response["Location"] == url
    code = callback_params(client.get(url))["code"]
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    claims = verify_id_token(client, "acme", body["id_token"], audience=rp.client_id)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    # The emailed code showed the person reads mail at the address: it is verified, until it changes.
    assert claims["email_verified"] is True
    userinfo = lambda: client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").json()  # noqa: E731
    assert userinfo()["email_verified"] is True
    from accounts.services import user_update

    user_update(user=email_user, email="new-address@example.com")
    assert userinfo() == {**userinfo(), "email": "new-address@example.com", "email_verified": False}


def test_an_mfa_reset_ends_the_providers_tokens(client, tenant, totp_user, rp):
    from flows.manage import user_change

    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    user_change(user=totp_user, actor=None, reset_mfa=True)
    assert client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == HTTPStatus.UNAUTHORIZED
    refreshed = client.post("/tenant/acme/oauth/token/", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": rp.client_id})
    assert refreshed.json()["error"] == "invalid_grant"


def test_logout_with_an_id_token_signed_before_a_key_rotation(client, tenant, totp_user, rp):
    from tenants.signing import signing_key_rotate

    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    signing_key_rotate(tenant=tenant)
    response = client.get("/tenant/acme/oauth/logout/", {"id_token_hint": body["id_token"], "post_logout_redirect_uri": "https://rp.example/"})
    assert response.status_code == HTTPStatus.FOUND and response["Location"] == "https://rp.example/"


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", ""])
def test_logout_with_a_bad_hint_is_an_error_page(client, tenant, rp, hint):
    response = client.get("/tenant/acme/oauth/logout/", {"id_token_hint": hint or "x", "post_logout_redirect_uri": "https://rp.example/"})
    assert response.status_code == HTTPStatus.BAD_REQUEST and "Location" not in response


def test_an_es256_tenant_signs_id_tokens_with_es256_and_its_kid(client, tenant, totp_user, rp):
    from oauth2_provider.models import get_access_token_model

    from tenants.signing import signing_key_rotate

    key = signing_key_rotate(tenant=tenant, algorithm="ES256")
    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "ES256" and header["kid"] == key.kid
    claims = verify_id_token(client, "acme", body["id_token"], audience=rp.client_id)
    assert claims["sub"] == str(totp_user.pk) and claims["amr"] == ["pwd", "otp", "mfa"] and claims["nonce"] == "n-1"
    # The access token was linked to its ID token, and works; the ID token is a logout hint.
    assert get_access_token_model().objects.filter(id_token__jti=claims["jti"]).exists()
    assert client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == HTTPStatus.OK
    response = client.get("/tenant/acme/oauth/logout/", {"id_token_hint": body["id_token"], "post_logout_redirect_uri": "https://rp.example/"})
    assert response.status_code == HTTPStatus.FOUND and response["Location"] == "https://rp.example/"


def test_access_tokens_are_rfc9068_jwts_an_api_checks_with_the_jwks(client, tenant, totp_user, rp, settings):
    """A relying party's own API checks the access token with the JWKS alone (typ at+jwt, the
    tenant's issuer, the client as audience); Gatehouse itself still judges it by its stored
    checksum, so a revoked one is refused at userinfo at once."""
    from tests.api.helpers import call, v2

    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["kid"]
    claims = verify_id_token(client, "acme", token, audience=rp.client_id)  # the same check: JWKS, kid, iss, aud
    assert claims["sub"] == str(totp_user.pk) and claims["client_id"] == rp.client_id
    assert claims["scope"] == "openid profile email" and claims["exp"] - claims["iat"] == settings.ACCESS_TOKEN_SECONDS
    assert "." not in body["refresh_token"]  # refresh tokens stay random strings
    # Not a token of the REST API, and refreshing gives a new one.
    assert call(client, "get", v2("acme", "Me"), token=token).status_code == HTTPStatus.UNAUTHORIZED
    refreshed = client.post("/tenant/acme/oauth/token/", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": rp.client_id}).json()
    newer = verify_id_token(client, "acme", refreshed["access_token"], audience=rp.client_id)
    assert newer["jti"] != claims["jti"] and newer["sub"] == claims["sub"]
    # Revoked: the JWT still verifies elsewhere until it expires, but Gatehouse refuses it now.
    assert client.post("/tenant/acme/oauth/revoke/", {"token": refreshed["access_token"], "client_id": rp.client_id}).status_code == HTTPStatus.OK
    assert client.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {refreshed['access_token']}").status_code == HTTPStatus.UNAUTHORIZED

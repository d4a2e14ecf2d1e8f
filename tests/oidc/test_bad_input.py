"""Bad input to a tenant's OpenID Provider: the RFCs' OAuth error responses, never a 500,
never a redirect to an unregistered URI; a replayed code ends its tokens; one tenant's
clients, codes and tokens are unknown to every other; prompt=login and max_age."""
from datetime import datetime, timedelta, timezone as dt_timezone
from http import HTTPStatus
from urllib.parse import urlencode

import pytest

from oidc.models import Application
from tests.conftest import FIXED_SECRET, PASSWORD
from tests.oidc.helpers import (
    REDIRECT, authorize_url, callback_params, code_for, exchange, make_client, pkce_pair, sign_in, verify_id_token,
)


@pytest.fixture
def rp(tenant):
    return make_client(tenant)[0]


@pytest.fixture
def signed_in(client, tenant, totp_user, rp):
    """A browser signed in to acme (with the app's code) through an authorize request."""
    _verifier, challenge = pkce_pair()
    url = authorize_url("acme", rp.client_id, challenge)
    sign_in(client, "acme", "tina", next_url=url, secret=FIXED_SECRET)
    return client


def assert_no_redirect(response, status=HTTPStatus.BAD_REQUEST):
    assert response.status_code == status, (response.status_code, response.get("Location"))
    assert "Location" not in response


def assert_oauth_error(response, error: str, status=HTTPStatus.BAD_REQUEST):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error


# --- the authorize endpoint ------------------------------------------------------------------

def test_unknown_client_is_an_error_page_not_a_redirect(signed_in):
    _v, challenge = pkce_pair()
    response = signed_in.get(authorize_url("acme", "no-such-client", challenge))
    assert_no_redirect(response)
    assert b"invalid_client_id" in response.content or b"invalid_request" in response.content


@pytest.mark.parametrize("redirect_uri", ["https://evil.example/callback", "https://rp.example/callback/../x", "https://rp.example/callbackx", "javascript:alert(1)"])
def test_unregistered_redirect_uri_is_never_redirected_to(signed_in, rp, redirect_uri):
    _v, challenge = pkce_pair()
    response = signed_in.get(authorize_url("acme", rp.client_id, challenge, redirect_uri=redirect_uri))
    assert_no_redirect(response)


def test_public_client_without_pkce_gets_an_error_at_its_redirect_uri(signed_in, rp):
    response = signed_in.get(authorize_url("acme", rp.client_id, None))
    assert response.status_code == HTTPStatus.FOUND
    params = callback_params(response)
    assert params["error"] == "invalid_request"
    assert params["iss"] == "http://testserver/tenant/acme" and params["state"] == "st-1"  # RFC 9207: errors name the issuer too


def test_plain_pkce_is_refused(signed_in, rp):
    verifier, _ = pkce_pair()
    response = signed_in.get(authorize_url("acme", rp.client_id, None, code_challenge=verifier, code_challenge_method="plain"))
    assert response.status_code in (HTTPStatus.FOUND, HTTPStatus.BAD_REQUEST)
    if response.status_code == HTTPStatus.FOUND:
        assert callback_params(response)["error"] == "invalid_request"


@pytest.mark.parametrize("response_type", ["token", "id_token", "code token", "bogus"])
def test_implicit_and_unknown_response_types_are_refused(signed_in, rp, response_type):
    _v, challenge = pkce_pair()
    response = signed_in.get(authorize_url("acme", rp.client_id, challenge, response_type=response_type))
    assert response.status_code in (HTTPStatus.FOUND, HTTPStatus.BAD_REQUEST)
    if response.status_code == HTTPStatus.FOUND:
        assert callback_params(response)["error"] in ("unsupported_response_type", "unauthorized_client", "invalid_request")


def test_tampered_consent_form_with_another_client_is_refused(client, tenant, user, tenant_factory):
    rp, _ = make_client(tenant, skip=False)
    theirs, _ = make_client(tenant_factory("other"), skip=False)
    verifier, challenge = pkce_pair()
    url = authorize_url("acme", rp.client_id, challenge)
    sign_in(client, "acme", "alice", next_url=url)
    form = {k: v for k, v in client.get(url).context["form"].initial.items() if v is not None}
    response = client.post(url, {**form, "client_id": theirs.client_id, "allow": "Authorize"})
    assert_no_redirect(response)
    response = client.post(url, {**form, "client_id": "nope", "allow": "Authorize"})
    assert_no_redirect(response)
    response = client.post(url, {**form, "redirect_uri": "https://evil.example/", "allow": "Authorize"})
    assert response.status_code != HTTPStatus.FOUND or not response["Location"].startswith("https://evil.example")


# --- the token endpoint --------------------------------------------------------------------

def test_wrong_or_missing_pkce_verifier_is_invalid_grant(signed_in, rp):
    verifier, challenge = pkce_pair()
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    assert_oauth_error(exchange(signed_in, "acme", rp.client_id, code, "x" * 50), "invalid_grant")
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    assert_oauth_error(exchange(signed_in, "acme", rp.client_id, code, None), "invalid_request")


def test_replayed_code_is_refused_and_revokes_the_tokens_it_minted(signed_in, rp):
    verifier, challenge = pkce_pair()
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    first = exchange(signed_in, "acme", rp.client_id, code, verifier)
    assert first.status_code == HTTPStatus.OK
    tokens = first.json()
    assert signed_in.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == HTTPStatus.OK
    assert_oauth_error(exchange(signed_in, "acme", rp.client_id, code, verifier), "invalid_grant")
    assert signed_in.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == HTTPStatus.UNAUTHORIZED
    refreshed = signed_in.post("/tenant/acme/oauth/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": rp.client_id})
    assert_oauth_error(refreshed, "invalid_grant")


def test_expired_code_is_invalid_grant(signed_in, rp, time_machine):
    time_machine.move_to(datetime.now(tz=dt_timezone.utc), tick=True)
    verifier, challenge = pkce_pair()
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    time_machine.shift(timedelta(minutes=5))
    assert_oauth_error(exchange(signed_in, "acme", rp.client_id, code, verifier), "invalid_grant")


def test_confidential_client_needs_its_secret(client, tenant, user):
    rp, secret = make_client(tenant, client_type=Application.CLIENT_CONFIDENTIAL)
    assert secret and Application.objects.get(pk=rp.pk).client_secret != secret  # stored hashed
    verifier, challenge = pkce_pair()
    url = authorize_url("acme", rp.client_id, challenge)
    sign_in(client, "acme", "alice", next_url=url)
    code = callback_params(client.get(url))["code"]
    assert_oauth_error(exchange(client, "acme", rp.client_id, code, verifier, secret="wrong"), "invalid_client", HTTPStatus.UNAUTHORIZED)
    assert_oauth_error(exchange(client, "acme", rp.client_id, code, verifier), "invalid_client", HTTPStatus.UNAUTHORIZED)
    ok = exchange(client, "acme", rp.client_id, code, verifier, secret=secret)
    assert ok.status_code == HTTPStatus.OK, ok.content


@pytest.mark.parametrize("body", [
    {},
    {"grant_type": "password", "username": "alice", "password": PASSWORD},
    {"grant_type": "client_credentials"},
    {"grant_type": "authorization_code", "code": "nope", "redirect_uri": REDIRECT},
    {"grant_type": "refresh_token", "refresh_token": "nope"},
    {"grant_type": "authorization_code", "code": "\x00", "redirect_uri": REDIRECT, "client_id": "\x00"},
])
def test_token_endpoint_bad_requests_are_oauth_errors(client, rp, body):
    response = client.post("/tenant/acme/oauth/token/", {"client_id": rp.client_id, **body})
    assert 400 <= response.status_code < 500
    assert response.json()["error"] in ("invalid_request", "unsupported_grant_type", "invalid_grant", "unauthorized_client", "invalid_client")


def test_tampered_and_unknown_tokens_at_userinfo(signed_in, rp):
    verifier, challenge = pkce_pair()
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    tokens = exchange(signed_in, "acme", rp.client_id, code, verifier).json()
    for bad in (tokens["access_token"][:-1] + "x", tokens["id_token"], "", "Bearer"):
        response = signed_in.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {bad}")
        assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_expired_access_token_at_userinfo(signed_in, rp, time_machine):
    time_machine.move_to(datetime.now(tz=dt_timezone.utc), tick=True)
    verifier, challenge = pkce_pair()
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    tokens = exchange(signed_in, "acme", rp.client_id, code, verifier).json()
    time_machine.shift(timedelta(seconds=tokens["expires_in"] + 1))
    assert signed_in.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == HTTPStatus.UNAUTHORIZED


# --- across tenants ------------------------------------------------------------------------

def test_another_tenants_client_code_and_tokens_are_unknown(signed_in, rp, tenant_factory, user_factory):
    other = tenant_factory("other")
    user_factory("tina", tenant=other)
    verifier, challenge = pkce_pair()
    # acme's client at other's authorize endpoint: unknown (no redirect).
    response = signed_in.get(authorize_url("other", rp.client_id, challenge))
    # Not signed in to "other": sent to its sign-in first, never to the client's redirect URI.
    assert not response.get("Location", "").startswith(REDIRECT)
    # acme's code at other's token endpoint.
    code = code_for(signed_in, "acme", rp.client_id, challenge)["code"]
    assert_oauth_error(exchange(signed_in, "other", rp.client_id, code, verifier), "invalid_client", HTTPStatus.UNAUTHORIZED)
    tokens = exchange(signed_in, "acme", rp.client_id, code, verifier).json()
    # acme's tokens at other's userinfo, refresh and revocation endpoints.
    assert signed_in.get("/tenant/other/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == HTTPStatus.UNAUTHORIZED
    refreshed = signed_in.post("/tenant/other/oauth/token/", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": rp.client_id})
    assert_oauth_error(refreshed, "invalid_client", HTTPStatus.UNAUTHORIZED)
    signed_in.post("/tenant/other/oauth/revoke/", {"token": tokens["refresh_token"], "client_id": rp.client_id})
    assert signed_in.get("/tenant/acme/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == HTTPStatus.OK
    # Logout at other naming acme's client.
    response = signed_in.get("/tenant/other/oauth/logout/", {"client_id": rp.client_id, "post_logout_redirect_uri": "https://rp.example/"})
    assert_no_redirect(response)


def test_a_session_of_another_tenant_does_not_sign_in_here(client, tenant, totp_user, tenant_factory, user_factory):
    other = tenant_factory("other")
    theirs, _ = make_client(other)
    verifier, challenge = pkce_pair()
    url = authorize_url("acme", make_client(tenant)[0].client_id, challenge)
    sign_in(client, "acme", "tina", next_url=url, secret=FIXED_SECRET)
    response = client.get(authorize_url("other", theirs.client_id, challenge))
    assert response.status_code == HTTPStatus.FOUND and response["Location"].startswith("/tenant/other/login/")


# --- prompt=login and max_age ----------------------------------------------------------------

def test_prompt_login_forces_a_fresh_sign_in(signed_in, rp):
    verifier, challenge = pkce_pair()
    response = signed_in.get(authorize_url("acme", rp.client_id, challenge, prompt="login"))
    assert response.status_code == HTTPStatus.FOUND and response["Location"].startswith("/tenant/acme/login/")
    assert "prompt" not in response["Location"].split("next=")[1]
    assert signed_in.get("/tenant/acme/account/").status_code == HTTPStatus.FOUND  # the old session ended


def test_prompt_login_with_a_bad_client_signs_no_one_out(signed_in):
    _v, challenge = pkce_pair()
    assert_no_redirect(signed_in.get(authorize_url("acme", "nope", challenge, prompt="login")))
    assert signed_in.get("/tenant/acme/account/").status_code == HTTPStatus.OK


def test_max_age_is_honoured(signed_in, rp, time_machine):
    time_machine.move_to(datetime.now(tz=dt_timezone.utc), tick=True)
    verifier, challenge = pkce_pair()
    # Within max_age: straight back with a code; the ID token's auth_time is the sign-in's.
    params = code_for(signed_in, "acme", rp.client_id, challenge, max_age="300")
    claims = verify_id_token(signed_in, "acme", exchange(signed_in, "acme", rp.client_id, params["code"], verifier).json()["id_token"], audience=rp.client_id)
    auth_time = claims["auth_time"]
    # Older than max_age: a fresh sign-in.
    time_machine.shift(timedelta(seconds=301))
    response = signed_in.get(authorize_url("acme", rp.client_id, challenge, max_age="300"))
    assert response.status_code == HTTPStatus.FOUND and response["Location"].startswith("/tenant/acme/login/")
    next_url = response["Location"].split("next=")[1]
    assert "max_age" not in next_url
    # max_age=0 always asks again.
    time_machine.shift(timedelta(seconds=1))
    url = authorize_url("acme", rp.client_id, challenge)
    sign_in(signed_in, "acme", "tina", next_url=url, secret=FIXED_SECRET)
    params = code_for(signed_in, "acme", rp.client_id, challenge)
    claims = verify_id_token(signed_in, "acme", exchange(signed_in, "acme", rp.client_id, params["code"], verifier).json()["id_token"], audience=rp.client_id)
    assert claims["auth_time"] > auth_time


def test_prompt_none_without_a_session_answers_login_required(client, tenant, rp):
    _v, challenge = pkce_pair()
    response = client.get(authorize_url("acme", rp.client_id, challenge, prompt="none"))
    params = callback_params(response)
    assert params["error"] == "login_required" and params["iss"] == "http://testserver/tenant/acme"


def test_nul_characters_are_oauth_errors_not_500s(client, tenant, rp):
    """PostgreSQL refuses NUL in a query: each endpoint answers invalid_request first."""
    import base64

    _v, challenge = pkce_pair()
    response = client.get(authorize_url("acme", "\x00", challenge))
    assert_no_redirect(response)
    basic = base64.b64encode(b"\x00:secret").decode()
    for path in ("/tenant/acme/oauth/token/", "/tenant/acme/oauth/revoke/"):
        assert_oauth_error(client.post(path, {"grant_type": "authorization_code", "code": "x"}, HTTP_AUTHORIZATION=f"Basic {basic}"), "invalid_request")
        assert_oauth_error(client.post(path, {"token": "a\x00", "client_id": rp.client_id}), "invalid_request")
    assert_oauth_error(client.get("/tenant/acme/oauth/userinfo/", {"x": "\x00"}), "invalid_request")
    response = client.get("/tenant/acme/oauth/logout/", {"client_id": "\x00"})
    assert_no_redirect(response)


def test_client_endpoints_need_no_csrf_token_and_the_pages_do(tenant, rp):
    from django.test import Client

    browserless = Client(enforce_csrf_checks=True)
    for path, data in (("/tenant/acme/oauth/token/", {"grant_type": "authorization_code", "code": "x", "client_id": rp.client_id}),
                       ("/tenant/acme/oauth/revoke/", {"token": "x", "client_id": rp.client_id}),
                       ("/tenant/acme/oauth/userinfo/", {})):
        response = browserless.post(path, data)
        assert response.status_code != HTTPStatus.FORBIDDEN, (path, response.content[:200])
    assert browserless.post("/tenant/acme/oauth/authorize/", {}).status_code == HTTPStatus.FORBIDDEN

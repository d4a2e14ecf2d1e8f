"""The per-IP limit on the OpenID Provider's client-to-server endpoints (token, revocation,
userinfo; ``oidc.views.FailedCallsRateLimitMixin``): only failed calls spend the budget, the
same budget as the sign-in pages and API; over it nothing is judged, so a valid code or token
is not used up; with the cache down they carry on without the limit."""
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from django.test import Client

from oidc.models import Application, Grant
from tests.accounts.flows import login_url
from tests.accounts.test_ratelimit import rate
from tests.api.helpers import assert_error, call, v2
from tests.conftest import free_port
from tests.oidc.helpers import authorize_url, callback_params, exchange, make_client, pkce_pair, sign_in

TOKEN, REVOKE, USERINFO = "/tenant/acme/oauth/token/", "/tenant/acme/oauth/revoke/", "/tenant/acme/oauth/userinfo/"


@pytest.fixture
def rp(tenant):
    client, _ = make_client(tenant)
    return client


@pytest.fixture
def rp_server():
    """The relying party's server: one address for all its users' calls (the browser that
    signs in is the test client, at 127.0.0.1)."""
    return Client(REMOTE_ADDR="203.0.113.5")


def code_signed_in(browser, rp) -> tuple[str, str]:
    """A fresh code for alice (password only), through the browser: (verifier, code)."""
    verifier, challenge = pkce_pair()
    url = authorize_url("acme", rp.client_id, challenge)
    if browser.session.get("_auth_user_id") is None:
        sign_in(browser, "acme", "alice", next_url=url)
    return verifier, callback_params(browser.get(url))["code"]


def refresh(caller, rp, refresh_token: str):
    return caller.post(TOKEN, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": rp.client_id})


def userinfo(caller, access_token: str):
    return caller.get(USERINFO, HTTP_AUTHORIZATION=f"Bearer {access_token}")


def bad_grant(caller, rp):
    return refresh(caller, rp, "not-a-refresh-token")


def assert_oauth_error(response, status, error: str):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    return body


def assert_rate_limited(response):
    body = assert_oauth_error(response, HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert 1 <= int(response["Retry-After"]) <= 61  # a window and one bucket (accounts.ratelimit)


def test_successful_calls_beyond_the_limit_are_never_refused(client, tenant, user, rp, rp_server, settings):
    """Limit 3 a minute: a code exchange, five refreshes, five userinfo calls and two
    revocations from one address all pass, and leave the whole budget for refusals."""
    rate(settings, "3/min")
    verifier, code = code_signed_in(client, rp)
    tokens = exchange(rp_server, "acme", rp.client_id, code, verifier).json()
    for _ in range(5):
        refreshed = refresh(rp_server, rp, tokens["refresh_token"])
        assert refreshed.status_code == HTTPStatus.OK, refreshed.content
        tokens = refreshed.json()
        assert userinfo(rp_server, tokens["access_token"]).status_code == HTTPStatus.OK
    for kind in ("access_token", "refresh_token"):
        revoked = rp_server.post(REVOKE, {"token": tokens[kind], "client_id": rp.client_id})
        assert revoked.status_code == HTTPStatus.OK
    for _ in range(3):
        assert_oauth_error(bad_grant(rp_server, rp), HTTPStatus.BAD_REQUEST, "invalid_grant")
    assert_rate_limited(bad_grant(rp_server, rp))


def test_refusals_on_the_three_endpoints_spend_one_budget_then_every_call_is_429(client, tenant, user, rp, rp_server, settings):
    """A wrong refresh token, a wrong client secret at revocation, a wrong access token at
    userinfo: the limit of 3 is spent, and every endpoint answers 429, a good call too."""
    confidential, _secret = make_client(tenant, client_type=Application.CLIENT_CONFIDENTIAL, name="Backend")
    rate(settings, "3/min")
    verifier, code = code_signed_in(client, rp)
    tokens = exchange(rp_server, "acme", rp.client_id, code, verifier).json()
    assert_oauth_error(bad_grant(rp_server, rp), HTTPStatus.BAD_REQUEST, "invalid_grant")
    wrong_secret = rp_server.post(REVOKE, {"token": "x", "client_id": confidential.client_id, "client_secret": "wrong"})
    assert_oauth_error(wrong_secret, HTTPStatus.UNAUTHORIZED, "invalid_client")
    assert userinfo(rp_server, "not-an-access-token").status_code == HTTPStatus.UNAUTHORIZED
    assert_rate_limited(bad_grant(rp_server, rp))
    assert_rate_limited(rp_server.post(REVOKE, {"token": tokens["refresh_token"], "client_id": rp.client_id}))
    assert_rate_limited(userinfo(rp_server, tokens["access_token"]))
    # Another address has a budget of its own.
    assert userinfo(Client(REMOTE_ADDR="198.51.100.7"), tokens["access_token"]).status_code == HTTPStatus.OK


def test_over_the_limit_a_valid_code_is_refused_and_not_used_up(client, tenant, user, rp, rp_server, settings, time_machine):
    """A per-second limit, time standing still: the code outlives the window."""
    time_machine.move_to(datetime.now(tz=UTC), tick=False)
    rate(settings, "2/s")
    verifier, code = code_signed_in(client, rp)
    for _ in range(2):
        assert_oauth_error(bad_grant(rp_server, rp), HTTPStatus.BAD_REQUEST, "invalid_grant")
    refused = exchange(rp_server, "acme", rp.client_id, code, verifier)
    assert_rate_limited(refused)
    assert Grant.objects.filter(application=rp).count() == 1  # the code is still there
    time_machine.shift(int(refused["Retry-After"]))
    answer = exchange(rp_server, "acme", rp.client_id, code, verifier)
    assert answer.status_code == HTTPStatus.OK, answer.content


def test_over_the_limit_a_valid_refresh_token_is_refused_and_not_used_up(client, tenant, user, rp, rp_server, settings, time_machine):
    """Had the refused refresh rotated the token, the next use would be a replay: invalid_grant
    and the whole chain revoked."""
    time_machine.move_to(datetime.now(tz=UTC), tick=False)
    rate(settings, "3/min")
    verifier, code = code_signed_in(client, rp)
    tokens = exchange(rp_server, "acme", rp.client_id, code, verifier).json()
    for _ in range(3):
        assert_oauth_error(bad_grant(rp_server, rp), HTTPStatus.BAD_REQUEST, "invalid_grant")
    refused = refresh(rp_server, rp, tokens["refresh_token"])
    assert_rate_limited(refused)
    time_machine.shift(int(refused["Retry-After"]))
    refreshed = refresh(rp_server, rp, tokens["refresh_token"])
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    assert userinfo(rp_server, refreshed.json()["access_token"]).status_code == HTTPStatus.OK


def test_the_sign_in_pages_the_api_and_the_token_endpoint_share_one_budget(client, user, rp, settings):
    rate(settings, "3/min")
    assert client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"}).status_code == HTTPStatus.OK
    wrong = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": "wrong-password"})
    assert wrong.status_code == HTTPStatus.UNAUTHORIZED
    assert_oauth_error(bad_grant(client, rp), HTTPStatus.BAD_REQUEST, "invalid_grant")
    assert_rate_limited(bad_grant(client, rp))
    assert client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"}).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert_error(call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": "x"}), HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")


def test_the_endpoints_refusals_also_close_the_sign_in_pages(client, user, rp, settings):
    rate(settings, "2/min")
    assert_oauth_error(bad_grant(client, rp), HTTPStatus.BAD_REQUEST, "invalid_grant")
    assert userinfo(client, "not-an-access-token").status_code == HTTPStatus.UNAUTHORIZED
    assert client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"}).status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_a_call_refused_for_a_nul_character_spends_the_budget(client, tenant, rp, settings):
    rate(settings, "2/min")
    assert_oauth_error(client.post(TOKEN, {"grant_type": "refresh_token", "refresh_token": "a\x00"}), HTTPStatus.BAD_REQUEST, "invalid_request")
    assert_oauth_error(client.post(REVOKE, {"token": "a\x00", "client_id": rp.client_id}), HTTPStatus.BAD_REQUEST, "invalid_request")
    assert_rate_limited(client.get(USERINFO, {"x": "\x00"}))


def test_with_the_cache_down_the_endpoints_carry_on_without_the_limit(client, tenant, user, rp, rp_server, settings, caplog):
    """Nothing these endpoints judge can be guessed, so a Redis outage does not stop relying
    parties: the calls are judged as usual, without the limit, one log line each."""
    verifier, code = code_signed_in(client, rp)
    tokens = exchange(rp_server, "acme", rp.client_id, code, verifier).json()
    verifier, code = code_signed_in(client, rp)
    working = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    assert exchange(rp_server, "acme", rp.client_id, code, verifier).status_code == HTTPStatus.OK
    refreshed = refresh(rp_server, rp, tokens["refresh_token"])
    assert refreshed.status_code == HTTPStatus.OK
    assert userinfo(rp_server, refreshed.json()["access_token"]).status_code == HTTPStatus.OK
    assert_oauth_error(refresh(rp_server, rp, "no-such-token"), HTTPStatus.BAD_REQUEST, "invalid_grant")
    assert rp_server.post(REVOKE, {"token": refreshed.json()["refresh_token"], "client_id": rp.client_id}).status_code == HTTPStatus.OK
    lines = [r for r in caplog.records if r.name == "accounts.ratelimit"]
    assert len(lines) == 5 and all("rate-limit store unreachable" in r.getMessage() for r in lines)
    settings.CACHES = working
    assert_oauth_error(refresh(rp_server, rp, refreshed.json()["refresh_token"]), HTTPStatus.BAD_REQUEST, "invalid_grant")  # revoked meanwhile

"""Hostile JSON on every sign-in call (hypothesis, bounded): random shapes, wrong types,
oversized values. Always a JSON error with a code (never a 5xx, never a trace), the security
headers and no-store, and nothing written on refusal."""
from http import HTTPStatus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Api, error_of
from tests.e2e.test_fuzz_pages import Written, values
from tests.e2e.test_headers import assert_security_headers

pytestmark = pytest.mark.e2e

CALLS = ["auth/login", "auth/mfa/totp/setup", "auth/mfa/email/send", "auth/mfa/verify", "auth/token/refresh", "auth/logout"]
KEYS = ["username", "password", "mfaToken", "code", "refreshToken", "extra", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | values,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4),
    json_values,
)


@pytest.fixture(scope="module")
def api(main_stack):
    client = Api(main_stack.server.url, "acme")
    yield client
    client.close()


@pytest.fixture(scope="module")
def written(main_stack):
    return Written(main_stack.db)


@given(call=st.sampled_from(CALLS), body=bodies)
@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz_json_bodies_of_the_sign_in_calls(api, written, call, body):
    response = api.post(call, body)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert_security_headers(response)
    assert "no-store" in response.headers.get("cache-control", "")
    if response.status_code >= 400:
        assert error_of(response)
    assert response.status_code != HTTPStatus.OK or call == "auth/login"  # no token without a real credential
    written.unchanged()


def test_malformed_and_oversized_json_is_refused_cleanly(api, written):
    for raw, ctype in ((b"{", "application/json"), (b"\xff\xfe", "application/json"), (b"username=a", "application/x-www-form-urlencoded"),
                       (b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'"}', "application/json"), (b"[" * 5000 + b"]" * 5000, "application/json")):
        response = api.http.post("auth/login", content=raw, headers={"Content-Type": ctype})
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
        assert error_of(response)
    written.unchanged()

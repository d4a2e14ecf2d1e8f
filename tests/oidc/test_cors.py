"""CORS: a tenant's clients' allowed origins may call that tenant's REST API and token
endpoint from a browser (preflight answered); other origins get no CORS headers; never
credentials."""
from http import HTTPStatus

import pytest

from tests.oidc.helpers import make_client

PREFLIGHT = {"HTTP_ORIGIN": "https://rp.example", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "content-type, authorization"}


@pytest.fixture
def rp(tenant):
    return make_client(tenant, allowed_origins=["https://rp.example"])[0]


@pytest.mark.parametrize("path", ["/tenant/acme/v2/auth/login", "/tenant/acme/v2/Users", "/tenant/acme/oauth/token/", "/tenant/acme/oauth/userinfo/"])
def test_preflight_from_an_allowed_origin_is_answered(client, rp, path):
    response = client.options(path, **PREFLIGHT)
    assert response.status_code == HTTPStatus.OK
    assert response["Access-Control-Allow-Origin"] == "https://rp.example"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response


def test_actual_request_from_an_allowed_origin_gets_the_header(client, rp):
    response = client.post("/tenant/acme/v2/auth/login", {"username": "x", "password": "y"}, content_type="application/json", HTTP_ORIGIN="https://rp.example")
    assert response["Access-Control-Allow-Origin"] == "https://rp.example"
    response = client.post("/tenant/acme/oauth/token/", {"grant_type": "authorization_code", "code": "x", "client_id": rp.client_id}, HTTP_ORIGIN="https://rp.example")
    assert response["Access-Control-Allow-Origin"] == "https://rp.example"
    # A browser app may read Retry-After on a 429 or a 503.
    assert response["Access-Control-Expose-Headers"] == "Retry-After"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://rp.example", "https://rp.example.evil", "null"])
def test_other_origins_get_no_cors_headers(client, rp, origin):
    response = client.options("/tenant/acme/v2/auth/login", **{**PREFLIGHT, "HTTP_ORIGIN": origin})
    assert "Access-Control-Allow-Origin" not in response
    response = client.post("/tenant/acme/v2/auth/login", {"username": "x", "password": "y"}, content_type="application/json", HTTP_ORIGIN=origin)
    assert "Access-Control-Allow-Origin" not in response


def test_an_origin_of_another_tenants_client_is_not_allowed_here(client, rp, tenant_factory):
    make_client(tenant_factory("other"), allowed_origins=["https://other-rp.example"])
    response = client.options("/tenant/acme/v2/auth/login", **{**PREFLIGHT, "HTTP_ORIGIN": "https://other-rp.example"})
    assert "Access-Control-Allow-Origin" not in response
    response = client.options("/tenant/other/v2/auth/login", **{**PREFLIGHT, "HTTP_ORIGIN": "https://other-rp.example"})
    assert response["Access-Control-Allow-Origin"] == "https://other-rp.example"


def test_pages_get_no_cors_headers(client, rp):
    response = client.get("/tenant/acme/login/", HTTP_ORIGIN="https://rp.example")
    assert "Access-Control-Allow-Origin" not in response


def test_discovery_and_jwks_are_public(client, tenant):
    for path in ("/tenant/acme/.well-known/openid-configuration", "/tenant/acme/.well-known/jwks.json"):
        assert client.get(path, HTTP_ORIGIN="https://anyone.example")["Access-Control-Allow-Origin"] == "*"

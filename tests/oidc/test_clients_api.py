"""The Clients API: admins of a tenant manage its clients; secrets shown once, stored hashed."""
from http import HTTPStatus

import pytest

from accounts.tokens import AMR_OTP
from oidc.models import Application
from tests.api.helpers import access_token, assert_error, call, v2

NEW = {"name": "Photo Album", "clientType": "confidential", "redirectUris": ["https://photos.example/cb"], "allowedOrigins": ["https://photos.example"]}


@pytest.fixture
def admin_token(user_factory):
    return access_token(user_factory("root", is_admin=True), AMR_OTP)


def test_create_list_get_update_delete(client, admin_token):
    created = call(client, "post", v2("acme", "Clients"), NEW, token=admin_token)
    assert created.status_code == HTTPStatus.CREATED, created.content
    body = created.json()
    secret = body.pop("clientSecret")
    assert len(secret) >= 32 and set(body) == {"clientId", "name", "clientType", "redirectUris", "postLogoutRedirectUris", "allowedOrigins", "skipConsent", "createdAt"}
    stored = Application.objects.get(client_id=body["clientId"])
    assert stored.client_secret != secret and secret not in stored.client_secret  # hashed
    listed = call(client, "get", v2("acme", "Clients"), token=admin_token).json()
    assert [c["clientId"] for c in listed["results"]] == [body["clientId"]] and "clientSecret" not in listed["results"][0]
    got = call(client, "get", v2("acme", f"Clients/{body['clientId']}"), token=admin_token).json()
    assert got == body
    changed = call(client, "patch", v2("acme", f"Clients/{body['clientId']}"), {"skipConsent": True, "name": "Album"}, token=admin_token)
    assert changed.status_code == HTTPStatus.OK and changed.json()["skipConsent"] is True and changed.json()["name"] == "Album"
    assert call(client, "delete", v2("acme", f"Clients/{body['clientId']}"), token=admin_token).status_code == HTTPStatus.NO_CONTENT
    assert_error(call(client, "get", v2("acme", f"Clients/{body['clientId']}"), token=admin_token), 404, "not_found")


def test_public_client_has_no_secret(client, admin_token):
    body = call(client, "post", v2("acme", "Clients"), {**NEW, "clientType": "public"}, token=admin_token).json()
    assert "clientSecret" not in body and body["clientType"] == "public"


@pytest.mark.parametrize("body, field", [
    ({**NEW, "redirectUris": []}, "redirectUris"),
    ({**NEW, "redirectUris": ["not a uri"]}, "redirectUris"),
    ({**NEW, "redirectUris": ["ftp://x.example/cb"]}, "redirectUris"),
    ({**NEW, "clientType": "other"}, "clientType"),
    ({**NEW, "allowedOrigins": ["nope"]}, "allowedOrigins"),
    ({**NEW, "skipConsent": "yes"}, "skipConsent"),
    ({**NEW, "clientSecret": "mine"}, "clientSecret"),
    ({k: v for k, v in NEW.items() if k != "name"}, "name"),
])
def test_bad_bodies_are_400_naming_the_field(client, admin_token, body, field):
    response = call(client, "post", v2("acme", "Clients"), body, token=admin_token)
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")
    assert field in response.json()["fields"]
    assert not Application.objects.exists()


def test_client_type_cannot_change(client, admin_token):
    cid = call(client, "post", v2("acme", "Clients"), NEW, token=admin_token).json()["clientId"]
    response = call(client, "put", v2("acme", f"Clients/{cid}"), {"clientType": "public"}, token=admin_token)
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")


def test_only_admins_of_the_tenant(client, admin_token, user_factory, tenant_factory):
    cid = call(client, "post", v2("acme", "Clients"), NEW, token=admin_token).json()["clientId"]
    assert_error(call(client, "get", v2("acme", "Clients")), 401, "not_authenticated")
    assert_error(call(client, "get", v2("acme", "Clients"), token=access_token(user_factory("plain"))), 403, "forbidden")
    other = tenant_factory("other")
    their_admin = access_token(user_factory("boss", tenant=other, is_admin=True), AMR_OTP)
    assert call(client, "get", v2("other", "Clients"), token=their_admin).json()["results"] == []
    assert_error(call(client, "get", v2("other", f"Clients/{cid}"), token=their_admin), 404, "not_found")
    assert_error(call(client, "delete", v2("other", f"Clients/{cid}"), token=their_admin), 404, "not_found")
    assert Application.objects.filter(client_id=cid).exists()


def test_schema_describes_the_clients_api(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/tenant/{tenant_id}/v2/Clients"])
    assert {"get", "put", "patch", "delete"} <= set(paths["/tenant/{tenant_id}/v2/Clients/{client_id}"])
    assert "clientSecret" in schema["components"]["schemas"]["ClientCreated"]["properties"]


@pytest.mark.parametrize("field, uri", [
    ("redirectUris", "http://photos.example/cb"),
    ("postLogoutRedirectUris", "http://photos.example/"),
    ("allowedOrigins", "http://photos.example"),
])
def test_plain_http_only_for_loopback(client, admin_token, field, uri):
    assert_error(call(client, "post", v2("acme", "Clients"), {**NEW, field: [uri]}, token=admin_token), 400, "invalid_request")
    ok = call(client, "post", v2("acme", "Clients"), {**NEW, field: [uri.replace("photos.example", "127.0.0.1:5000")]}, token=admin_token)
    assert ok.status_code == HTTPStatus.CREATED, ok.content


def test_the_model_refuses_plain_http_for_other_hosts_too(tenant):
    """The admin's road (the model's clean), not only the API's pattern."""
    from django.core.exceptions import ValidationError

    from oidc.services import client_create

    with pytest.raises(ValidationError) as refused:
        client_create(tenant=tenant, name="x", client_type="public", redirect_uris=["http://photos.example/cb"])
    assert "redirect_uris" in refused.value.message_dict
    client_create(tenant=tenant, name="x", client_type="public", redirect_uris=["http://localhost:8000/cb"])

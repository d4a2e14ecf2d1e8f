"""Everything under /tenant/…/v2/ answers JSON errors: bad bodies, big bodies, unknown paths,
wrong methods and media types; and a refusal changes nothing."""
import json
from http import HTTPStatus

import pytest

from accounts.models import AuditEvent, User
from mfa.models import TOTPDevice
from tenants.models import Tenant
from tests.api.helpers import assert_error, call, v2
from tests.conftest import PASSWORD

TWO_MIB = 2 * 1024 * 1024


def snapshot():
    return (
        list(User.objects.order_by("pk").values()),
        list(Tenant.objects.order_by("pk").values()),
        list(AuditEvent.objects.order_by("pk").values()),
        list(TOTPDevice.objects.order_by("pk").values()),
    )


def bodies():
    big = json.dumps({"username": "x" * TWO_MIB, "email": "x@example.com"})
    return [
        ("not json", "{username: alice", "application/json", HTTPStatus.BAD_REQUEST, "invalid_json"),
        ("empty object text", "", "application/json", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("NaN", '{"mfaMaxAttempts": NaN}', "application/json", HTTPStatus.BAD_REQUEST, "invalid_json"),
        ("not utf-8", b'{"username": "\xff\xfe"}', "application/json", HTTPStatus.BAD_REQUEST, "invalid_json"),
        ("a JSON list", '[{"username": "alice"}]', "application/json", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("a JSON string", '"alice"', "application/json", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("null", "null", "application/json", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("deeply nested", "[" * 100_000 + "]" * 100_000, "application/json", HTTPStatus.BAD_REQUEST, "invalid_json"),
        ("2 MiB", big, "application/json", HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large"),
        ("form data", "username=alice&password=x", "application/x-www-form-urlencoded", HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("text", '{"username": "alice"}', "text/plain", HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ]


ENDPOINTS = [
    ("post", "auth/login", False),
    ("post", "auth/mfa/totp/setup", False),
    ("post", "auth/mfa/email/send", False),
    ("post", "auth/mfa/verify", False),
    ("post", "auth/token/refresh", False),
    ("post", "auth/logout", False),
    ("post", "Users", True),
    ("put", "Users/{uid}", True),
    ("patch", "Users/{uid}", True),
    ("put", "Settings", True),
    ("patch", "Settings", True),
]


@pytest.mark.parametrize("method, path, needs_admin", ENDPOINTS)
def test_bad_bodies_are_json_4xx_and_change_nothing(client, admin, admin_token, user, method, path, needs_admin):
    before = snapshot()
    for name, raw, content_type, status, code in bodies():
        if name == "empty object text" and not path.startswith(("auth/", "Users")) or (name == "empty object text" and method != "post"):
            continue  # an empty body is "no changes" for PUT/PATCH
        response = call(client, method, v2("acme", path.format(uid=user.pk)), raw=raw, content_type=content_type,
                        token=admin_token if needs_admin else None)
        assert_error(response, status, code)
        assert b"Traceback" not in response.content and b"<html" not in response.content.lower()
    assert snapshot() == before


def test_content_length_alone_is_enough_for_413(client, admin, admin_token):
    # The declared length is judged before a byte is read.
    response = client.generic("POST", v2("acme", "auth/login"), b'{"username": "a", "password": "b"}',
                              content_type="application/json", CONTENT_LENGTH=str(TWO_MIB))
    assert_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large")


def test_bytes_read_are_counted_too(rf, admin):
    """A stream longer than its declared length (or with none trusted) is cut at the limit."""
    import io

    from rest_framework.request import Request

    from accounts.api.errors import PayloadTooLarge
    from accounts.api.parsers import LimitedJSONParser

    request = Request(rf.post("/x", data=b"{}", content_type="application/json"))
    with pytest.raises(PayloadTooLarge):
        LimitedJSONParser().parse(io.BytesIO(b" " * TWO_MIB + b"{}"), "application/json", {"request": request})
    assert LimitedJSONParser().parse(io.BytesIO(b' {"a": 1} '), "application/json", {"request": request}) == {"a": 1}


def test_just_under_one_mib_is_parsed(client, user):
    password = "p" * (1024 * 1024 - 100)
    raw = json.dumps({"username": "alice", "password": password})
    assert len(raw) <= 1024 * 1024
    # Parsed, then refused by the serializer for its length: not a 413.
    assert_error(call(client, "post", v2("acme", "auth/login"), raw=raw), HTTPStatus.BAD_REQUEST, "invalid_request")


def test_body_without_content_type_is_415(client, user):
    response = client.generic("POST", v2("acme", "auth/login"), json.dumps({"username": "alice", "password": PASSWORD}), content_type="")
    assert_error(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "alice"}, "password"),
        ({"username": "alice", "password": 12345}, "password"),
        ({"username": ["alice"], "password": PASSWORD}, "username"),
        ({"username": "alice", "password": PASSWORD, "remember": True}, "remember"),
    ],
)
def test_login_field_errors(client, user, body, field):
    response = call(client, "post", v2("acme", "auth/login"), body)
    assert field in assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")["fields"]
    user.refresh_from_db()
    assert user.failed_password_count == 0  # a malformed request is not a guess


def test_verify_code_must_be_a_string(client, totp_user):
    response = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": "x", "code": 123456})
    assert "code" in assert_error(response, 400, "invalid_request")["fields"]


@pytest.mark.parametrize("path", ["nope", "users", "Users/", "auth/login/", "auth", "Users/123/events", "Settings/x"])
def test_unknown_paths_are_json_404(client, tenant, path):
    assert_error(client.get(v2("acme", path)), HTTPStatus.NOT_FOUND, "not_found")
    assert_error(client.post(v2("acme", path), "{}", content_type="application/json"), HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.parametrize("method, path", [("get", "auth/login"), ("delete", "Settings"), ("post", "Settings"), ("put", "Users")])
def test_wrong_method_is_json_405(client, admin, admin_token, method, path):
    response = getattr(client, method)(v2("acme", path), HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    assert_error(response, HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert response["Allow"] and "OPTIONS" not in response["Allow"]
    assert method.upper() not in response["Allow"]


def test_options_is_not_part_of_the_api(client, admin, admin_token):
    response = client.options(v2("acme", "Settings"), HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    assert_error(response, HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert response["Allow"] == "GET, PUT, PATCH, HEAD"


def test_unacceptable_accept_header_is_406_json(client, user):
    response = client.post(v2("acme", "auth/login"), json.dumps({"username": "alice", "password": PASSWORD}),
                           content_type="application/json", HTTP_ACCEPT="text/html")
    assert response.status_code == HTTPStatus.NOT_ACCEPTABLE
    assert response.json()["error"] == "not_acceptable"


def test_server_error_is_json_without_trace(client, user, monkeypatch, settings):
    from accounts.api import views

    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "api_password", boom)
    client.raise_request_exception = False
    response = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": PASSWORD})
    assert_error(response, HTTPStatus.INTERNAL_SERVER_ERROR, "server_error")
    assert b"secret internals" not in response.content


def test_nul_in_user_agent_is_stored_without_it(client, user):
    response = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": "wrong-pass-1"},
                    HTTP_USER_AGENT="probe\x00/1.0")
    assert_error(response, HTTPStatus.UNAUTHORIZED, "invalid_credentials")
    assert AuditEvent.objects.get(kind="login_failure").user_agent == "probe/1.0"


@pytest.mark.parametrize("field", ["username", "password"])
def test_nul_in_a_string_field_is_400(client, user, field):
    body = {"username": "alice", "password": PASSWORD, field: "al\x00ice"}
    assert field in assert_error(call(client, "post", v2("acme", "auth/login"), body), 400, "invalid_request")["fields"]



def test_a_repeated_query_parameter_is_refused(client, tenant, admin_token):
    before = snapshot()
    response = call(client, "GET", v2(tenant.id, "Users?limit=1&limit=2"), token=admin_token)
    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")
    assert "limit" in body["fields"]
    assert snapshot() == before


# --- input serializers: API names only (``source=`` renames them to the services' names)


@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("post", "auth/mfa/verify", {"mfa_token": "x", "code": "123456"}, "mfa_token"),
        ("post", "auth/token/refresh", {"refresh_token": "x"}, "refresh_token"),
        ("post", "Users", {"username": "bob", "email": "bob@example.com", "mfa_method": "totp"}, "mfa_method"),
        ("post", "Users", {"username": "bob", "email": "bob@example.com", "is_admin": True}, "is_admin"),
        ("patch", "Users/{uid}", {"reset_mfa": True}, "reset_mfa"),
        ("put", "Users/{uid}", {"is_active": False}, "is_active"),
        ("patch", "Settings", {"lockout_seconds": 42}, "lockout_seconds"),
    ],
)
def test_a_service_name_is_an_unknown_field(client, admin, admin_token, user, method, path, body, field):
    before = snapshot()
    response = call(client, method, v2("acme", path.format(uid=user.pk)), body, token=admin_token)
    assert assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")["fields"][field] == ["Unknown field."]
    assert snapshot() == before

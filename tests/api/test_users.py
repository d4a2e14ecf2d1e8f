"""The Users API: list (cursor pagination, filters), create, get, PUT/PATCH (resetTOTP, unlock,
password), delete; and a user's audit events."""
import uuid
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent, MfaMethod, User
from accounts.tokens import AMR_OTP, token_pair_issue
from mfa.models import EmailCode, RecoveryCode, TOTPDevice
from mfa.recovery_codes import recovery_codes_replace
from tests.api.helpers import access_token, assert_error, call, v2
from tests.conftest import PASSWORD, confirm_totp, run_notices

USER_KEYS = {"id", "username", "email", "mfaMethod", "mfaEnrolled", "isActive", "isAdmin", "lockedUntil", "createdAt", "lastLoginAt"}


@pytest.fixture
def bob(user_factory):
    user = user_factory("bob", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- list -----------------------------------------------------------------------------------


def test_list_users(client, admin, admin_token, bob, email_user):
    response = call(client, "get", v2("acme", "Users"), token=admin_token)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"results", "next"} and body["next"] is None
    assert [u["username"] for u in body["results"]] == ["root", "bob", "emma"]  # oldest first
    by_name = {u["username"]: u for u in body["results"]}
    assert set(by_name["bob"]) == USER_KEYS
    assert by_name["bob"] == {
        "id": str(bob.pk),
        "username": "bob",
        "email": "bob@example.com",
        "mfaMethod": "totp",
        "mfaEnrolled": True,
        "isActive": True,
        "isAdmin": False,
        "lockedUntil": None,
        "createdAt": by_name["bob"]["createdAt"],
        "lastLoginAt": None,
    }
    assert by_name["emma"]["mfaEnrolled"] is True
    assert by_name["root"]["isAdmin"] is True


def test_list_never_shows_other_tenants(client, admin, admin_token, tenant_factory, user_factory):
    user_factory("bob", tenant=tenant_factory("other"))
    names = [u["username"] for u in call(client, "get", v2("acme", "Users"), token=admin_token).json()["results"]]
    assert names == ["root"]


def test_filter_by_username_and_email(client, admin, admin_token, bob, user_factory):
    user_factory("robert", email="Bob@Example.com")
    found = call(client, "get", v2("acme", "Users") + "?username=BOB", token=admin_token).json()["results"]
    assert [u["username"] for u in found] == ["bob"]
    found = call(client, "get", v2("acme", "Users") + "?email=bob@EXAMPLE.com", token=admin_token).json()["results"]
    assert sorted(u["username"] for u in found) == ["bob", "robert"]
    assert call(client, "get", v2("acme", "Users") + "?username=bo", token=admin_token).json()["results"] == []


def test_cursor_pagination_over_a_thousand_users(client, admin, admin_token, tenant):
    hashed = make_password(None)
    User.objects.bulk_create(
        [User(tenant=tenant, username=f"bulk{i:04d}", email=f"bulk{i:04d}@example.com", password=hashed) for i in range(1000)]
    )
    expected = list(User.objects.filter(tenant=tenant).order_by("created_at", "id").values_list("id", flat=True))
    seen, url, pages = [], v2("acme", "Users") + "?limit=200", 0
    while url:
        response = call(client, "get", url, token=admin_token)
        assert response.status_code == HTTPStatus.OK
        body = response.json()
        assert len(body["results"]) <= 200
        seen += [uuid.UUID(u["id"]) for u in body["results"]]
        nxt = body["next"]
        if nxt is not None:
            assert nxt.startswith("http://testserver/tenant/acme/v2/Users?")
        url = path_of(nxt) if nxt else None
        pages += 1
    assert pages == 6  # 1001 users
    assert len(seen) == len(set(seen)) == 1001
    assert seen == expected


def test_pagination_with_equal_timestamps(client, admin, admin_token, tenant):
    same = timezone.now()
    User.objects.bulk_create([User(tenant=tenant, username=f"twin{i}", email=f"t{i}@example.com") for i in range(7)])
    User.objects.filter(username__startswith="twin").update(created_at=same)
    seen, url = [], v2("acme", "Users") + "?limit=3"
    while url:
        body = call(client, "get", url, token=admin_token).json()
        seen += [u["id"] for u in body["results"]]
        url = path_of(body["next"]) if body["next"] else None
    assert len(seen) == len(set(seen)) == 8


@pytest.mark.parametrize(
    "query",
    ["?cursor=%%%", "?cursor=bm9uc2Vuc2U", "?cursor=cD1ub3QtYS1kYXRl", "?limit=0", "?limit=201", "?limit=abc",
     "?username=%00", "?email=a%00%F2%A4%A7%9E", "?username=" + "x" * 301],
)
def test_bad_query_parameters_are_400(client, admin, admin_token, query):
    body = assert_error(call(client, "get", v2("acme", "Users") + query, token=admin_token), HTTPStatus.BAD_REQUEST, "invalid_request")
    assert len(body["fields"]) == 1 and set(body["fields"]) <= {"cursor", "limit", "username", "email"}


# --- create ---------------------------------------------------------------------------------


def test_create_user(client, admin, admin_token):
    response = call(client, "post", v2("acme", "Users"),
                    {"username": "Nora", "email": "nora@example.com", "password": PASSWORD, "mfaMethod": "email", "isAdmin": False},
                    token=admin_token)
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert set(body) == USER_KEYS
    assert (body["username"], body["mfaMethod"], body["isAdmin"], body["isActive"]) == ("nora", "email", False, True)
    nora = User.objects.get(pk=body["id"])
    assert nora.tenant_id == "acme" and nora.check_password(PASSWORD)
    # and can sign in
    login = call(client, "post", v2("acme", "auth/login"), {"username": "nora", "password": PASSWORD}).json()
    assert login["mfaMethod"] == "email"


def test_create_minimal_user_has_no_usable_password(client, admin, admin_token):
    body = call(client, "post", v2("acme", "Users"), {"username": "min", "email": "min@example.com"}, token=admin_token).json()
    assert (body["mfaMethod"], body["isAdmin"], body["mfaEnrolled"]) == ("none", False, False)
    assert not User.objects.get(pk=body["id"]).has_usable_password()


def test_create_taken_username_is_409(client, admin, admin_token, bob):
    response = call(client, "post", v2("acme", "Users"), {"username": "BOB", "email": "x@example.com"}, token=admin_token)
    body = assert_error(response, HTTPStatus.CONFLICT, "username_taken")
    assert "username" in body["fields"]
    assert User.objects.filter(tenant_id="acme").count() == 2


def test_same_username_in_another_tenant_is_fine(client, admin, admin_token, tenant_factory, user_factory):
    user_factory("bob", tenant=tenant_factory("other"))
    response = call(client, "post", v2("acme", "Users"), {"username": "bob", "email": "b@example.com"}, token=admin_token)
    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "x@example.com"}, "username"),
        ({"username": "x"}, "email"),
        ({"username": "x", "email": "not-an-email"}, "email"),
        ({"username": "bad name!", "email": "x@example.com"}, "username"),
        ({"username": "x", "email": "x@example.com", "mfaMethod": "sms"}, "mfaMethod"),
        ({"username": "x", "email": "x@example.com", "isAdmin": "yes"}, "isAdmin"),
        ({"username": 5, "email": "x@example.com"}, "username"),
        ({"username": "x", "email": "x@example.com", "role": "admin"}, "role"),
        ({"username": "x", "email": "x@example.com", "is_admin": True}, "is_admin"),
        ({"username": None, "email": "x@example.com"}, "username"),
    ],
)
def test_create_refuses_bad_fields(client, admin, admin_token, body, field):
    response = call(client, "post", v2("acme", "Users"), body, token=admin_token)
    errors = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")["fields"]
    assert field in errors
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password, rules",
    [
        ("123", {"password_too_short", "password_too_common"}),
        ("x" * 1025, {"password_too_long"}),
        ("xavier@example.com", {"password_too_similar"}),
    ],
)
def test_create_names_the_password_rule_broken(client, admin, admin_token, password, rules):
    body = {"username": "xavier", "email": "xavier@example.com", "password": password}
    response = call(client, "post", v2("acme", "Users"), body, token=admin_token)
    assert set(assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_password")["fields"]) == {"password"}
    assert User.objects.count() == 1


# --- get ------------------------------------------------------------------------------------


def test_get_user(client, admin, admin_token, bob):
    body = call(client, "get", v2("acme", f"Users/{bob.pk}"), token=admin_token).json()
    assert body["id"] == str(bob.pk) and body["mfaEnrolled"] is True


def test_get_user_of_other_tenant_or_unknown_is_404(client, admin, admin_token, tenant_factory, user_factory):
    theirs = user_factory("carol", tenant=tenant_factory("other"))
    for method, body in (("get", None), ("put", {"unlock": True}), ("patch", {"resetTOTP": True}), ("delete", None)):
        assert_error(call(client, method, v2("acme", f"Users/{theirs.pk}"), body, token=admin_token), 404, "not_found")
        assert_error(call(client, method, v2("acme", f"Users/{uuid.uuid4()}"), body, token=admin_token), 404, "not_found")
    assert_error(call(client, "get", v2("acme", "Users/not-a-uuid"), token=admin_token), 404, "not_found")
    assert User.objects.filter(pk=theirs.pk).exists()


# --- PUT / PATCH ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_reset_totp(client, admin, admin_token, bob, method):
    recovery_codes_replace(user=bob)
    EmailCode.objects.create(user=bob, code_hash="x" * 64, created_at=timezone.now(), expires_at=timezone.now() + timedelta(minutes=5))
    refresh = token_pair_issue(user=bob, amr=AMR_OTP)["refreshToken"]
    mail.outbox.clear()
    response = call(client, method, v2("acme", f"Users/{bob.pk}"), {"resetTOTP": True}, token=admin_token)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert (body["mfaMethod"], body["mfaEnrolled"]) == ("totp", False)
    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert not RecoveryCode.objects.filter(user=bob).exists()
    assert not EmailCode.objects.filter(user=bob).exists()
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": refresh}), 401, "invalid_token")
    run_notices()
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    event = AuditEvent.objects.get(user=bob, kind="mfa_reset")
    assert (event.actor_id, event.channel) == (admin.pk, "api")
    # Next sign-in: set the app up again.
    login = call(client, "post", v2("acme", "auth/login"), {"username": "bob", "password": PASSWORD}).json()
    assert (login["mfaMethod"], login["enrollmentRequired"]) == ("totp", True)


def test_reset_false_does_nothing(client, admin, admin_token, bob):
    response = call(client, "put", v2("acme", f"Users/{bob.pk}"), {"resetTOTP": False, "unlock": False}, token=admin_token)
    assert response.status_code == HTTPStatus.OK
    assert TOTPDevice.objects.filter(user=bob).exists()
    assert not AuditEvent.objects.exists()


def test_unlock(client, admin, admin_token, bob):
    User.objects.filter(pk=bob.pk).update(failed_code_count=5, locked_until=timezone.now() + timedelta(minutes=5))
    before = call(client, "get", v2("acme", f"Users/{bob.pk}"), token=admin_token).json()
    assert before["lockedUntil"] is not None
    body = call(client, "patch", v2("acme", f"Users/{bob.pk}"), {"unlock": True}, token=admin_token).json()
    assert body["lockedUntil"] is None
    bob.refresh_from_db()
    assert (bob.failed_code_count, bob.locked_until) == (0, None)
    assert AuditEvent.objects.get(user=bob, kind="unlock").actor_id == admin.pk
    assert call(client, "post", v2("acme", "auth/login"), {"username": "bob", "password": PASSWORD}).status_code == HTTPStatus.OK


def test_set_password(client, admin, admin_token, bob):
    refresh = token_pair_issue(user=bob, amr=AMR_OTP)["refreshToken"]
    response = call(client, "patch", v2("acme", f"Users/{bob.pk}"), {"password": "a-brand-new-pass-42"}, token=admin_token)
    assert response.status_code == HTTPStatus.OK
    bob.refresh_from_db()
    assert bob.check_password("a-brand-new-pass-42")
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": refresh}), 401, "invalid_token")
    assert AuditEvent.objects.get(user=bob, kind="password_changed").actor_id == admin.pk


def test_update_plain_fields(client, admin, admin_token, bob):
    body = call(client, "put", v2("acme", f"Users/{bob.pk}"),
                {"username": "Robert", "email": "robert@example.com", "mfaMethod": "email", "isAdmin": True, "isActive": False},
                token=admin_token).json()
    assert (body["username"], body["email"], body["mfaMethod"], body["isAdmin"], body["isActive"]) == (
        "robert", "robert@example.com", "email", True, False)
    bob.refresh_from_db()
    assert (bob.username, bob.is_tenant_admin, bob.is_staff, bob.is_active) == ("robert", True, True, False)


def test_fields_left_out_keep_their_values(client, admin, admin_token, bob):
    body = call(client, "put", v2("acme", f"Users/{bob.pk}"), {"email": "new@example.com"}, token=admin_token).json()
    assert (body["username"], body["mfaMethod"], body["email"]) == ("bob", "totp", "new@example.com")
    assert call(client, "patch", v2("acme", f"Users/{bob.pk}"), {}, token=admin_token).json()["email"] == "new@example.com"


def test_rename_to_taken_username_is_409(client, admin, admin_token, bob):
    assert_error(call(client, "patch", v2("acme", f"Users/{bob.pk}"), {"username": "ROOT"}, token=admin_token), 409, "username_taken")
    bob.refresh_from_db()
    assert bob.username == "bob"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"resetTOTP": "yes"}, "resetTOTP"),
        ({"resetTOTP": 1}, "resetTOTP"),
        ({"unlock": "true"}, "unlock"),
        ({"isActive": None}, "isActive"),
        ({"mfaMethod": "sms"}, "mfaMethod"),
        ({"password": 12345678}, "password"),
        ({"password": "short"}, "password"),
        ({"sendPasswordReset": "yes"}, "sendPasswordReset"),
        ({"email": "nope"}, "email"),
        ({"resettotp": True}, "resettotp"),
        ({"id": "00000000-0000-0000-0000-000000000000"}, "id"),
        ({"lockedUntil": None}, "lockedUntil"),
    ],
)
def test_update_refuses_bad_fields_and_changes_nothing(client, admin, admin_token, bob, body, field):
    before = list(User.objects.order_by("pk").values()), list(TOTPDevice.objects.values())
    for method in ("put", "patch"):
        # A valid action alongside must not happen either.
        response = call(client, method, v2("acme", f"Users/{bob.pk}"), {"resetTOTP": True, "sendPasswordReset": True, **body},
                        token=admin_token)
        code = "invalid_password" if body == {"password": "short"} else "invalid_request"
        assert field in assert_error(response, HTTPStatus.BAD_REQUEST, code)["fields"]
    assert (list(User.objects.order_by("pk").values()), list(TOTPDevice.objects.values())) == before
    assert not AuditEvent.objects.exists()
    run_notices()
    assert not mail.outbox


def test_failed_password_rolls_back_the_other_changes(client, admin, admin_token, bob):
    response = call(client, "patch", v2("acme", f"Users/{bob.pk}"),
                    {"email": "changed@example.com", "password": "password", "resetTOTP": True, "sendPasswordReset": True},
                    token=admin_token)
    assert "password" in assert_error(response, 400, "invalid_password")["fields"]
    bob.refresh_from_db()
    assert bob.email == "bob@example.com"
    assert TOTPDevice.objects.filter(user=bob).exists()


# --- delete ---------------------------------------------------------------------------------


def test_delete_user(client, admin, admin_token, bob):
    refresh = token_pair_issue(user=bob, amr=AMR_OTP)["refreshToken"]
    response = call(client, "delete", v2("acme", f"Users/{bob.pk}"), token=admin_token)
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""
    assert not User.objects.filter(pk=bob.pk).exists()
    assert_error(call(client, "get", v2("acme", f"Users/{bob.pk}"), token=admin_token), 404, "not_found")
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": refresh}), 401, "invalid_token")


# --- events (issue 4) -----------------------------------------------------------------------


def test_user_events_newest_first(client, admin, admin_token, bob, time_machine):
    time_machine.move_to("2030-05-17 12:00:00Z", tick=False)
    call(client, "post", v2("acme", "auth/login"), {"username": "bob", "password": "wrong-pass-1"}, HTTP_USER_AGENT="probe/1.0")
    time_machine.shift(5)
    token = access_token(admin, AMR_OTP)
    call(client, "patch", v2("acme", f"Users/{bob.pk}"), {"unlock": True}, token=token, REMOTE_ADDR="10.0.0.7")
    time_machine.shift(5)
    call(client, "patch", v2("acme", f"Users/{bob.pk}"), {"resetTOTP": True}, token=token)
    response = call(client, "get", v2("acme", f"Users/{bob.pk}/events"), token=token)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["next"] is None
    assert [e["kind"] for e in body["results"]] == ["mfa_reset", "unlock", "login_failure"]
    reset, unlock, failure = body["results"]
    assert set(reset) == {"id", "kind", "createdAt", "ip", "userAgent", "channel", "actor", "username"}
    assert (unlock["actor"], unlock["ip"], unlock["channel"], unlock["username"]) == (str(admin.pk), "10.0.0.7", "api", "bob")
    assert (failure["actor"], failure["userAgent"], failure["createdAt"]) == (None, "probe/1.0", "2030-05-17T12:00:00Z")


def test_user_events_paginate_and_stay_in_tenant(client, admin, admin_token, bob, tenant_factory, user_factory):
    AuditEvent.objects.bulk_create([AuditEvent(tenant_id="acme", user=bob, username="bob", kind="code_failure") for _ in range(7)])
    other = tenant_factory("other")
    carol = user_factory("carol", tenant=other)
    AuditEvent.objects.create(tenant=other, user=carol, username="carol", kind="lockout")
    ids, url = [], v2("acme", f"Users/{bob.pk}/events") + "?limit=3"
    while url:
        body = call(client, "get", url, token=admin_token).json()
        ids += [e["id"] for e in body["results"]]
        url = path_of(body["next"]) if body["next"] else None
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 7
    assert_error(call(client, "get", v2("acme", f"Users/{carol.pk}/events"), token=admin_token), 404, "not_found")


def test_user_events_need_an_mfa_admin(client, admin, bob, user_factory):
    assert_error(call(client, "get", v2("acme", f"Users/{bob.pk}/events"), token=access_token(bob)), 403, "forbidden")
    assert_error(call(client, "get", v2("acme", f"Users/{bob.pk}/events")), 401, "not_authenticated")


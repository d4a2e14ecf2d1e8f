"""The audit trail: every event kind is written by the flow that causes it, read back through
the admin (filtered by kind), and nobody can add, change or delete an event."""
import time
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.test import Client

from accounts.models import AuditEvent, MfaMethod
from accounts.passwords import reset_token_make
from accounts.tokens import AMR_OTP, token_pair_issue
from mfa import totp
from mfa.recovery_codes import recovery_codes_replace
from tenants.services import tenant_update_policy
from tests.accounts.flows import code_now, logout_url, manual_key, password_step, setup_url, verify_url
from tests.admin.conftest import signed_in_client
from tests.conftest import confirm_totp

Kind = AuditEvent.Kind


def wrong_code() -> str:
    good = {code_now(offset=o) for o in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in good)


def sign_in_with_app(client, username: str, code: str):
    password_step(client, "acme", username)
    return client.post(verify_url("acme"), {"code": code})


@pytest.fixture
def tina(user_factory):
    user = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


def trigger(kind: str, *, user_factory, tina, client_a) -> str:
    """Cause one event of ``kind`` the way it happens for real; return the username it names."""
    c = Client()
    if kind == Kind.SIGN_IN_SUCCESS:
        user_factory("alice")
        password_step(c, "acme", "alice")
        return "alice"
    if kind == Kind.SIGN_IN_FAILURE:
        password_step(c, "acme", "tina", "not-the-password")
        return "tina"
    if kind == Kind.CODE_FAILURE:
        sign_in_with_app(c, "tina", wrong_code())
        return "tina"
    if kind == Kind.LOCKOUT:
        tenant_update_policy(tenant=tina.tenant, password_max_attempts=1)
        password_step(c, "acme", "tina", "not-the-password")
        return "tina"
    if kind == Kind.REPLAY_REFUSED:
        code = code_now()
        assert sign_in_with_app(c, "tina", code).status_code == HTTPStatus.FOUND
        c.post(logout_url("acme"))
        sign_in_with_app(c, "tina", code)
        return "tina"
    if kind == Kind.FACTOR_SETUP:
        user_factory("newt", mfa_method=MfaMethod.TOTP)
        password_step(c, "acme", "newt")
        secret = manual_key(c.get(setup_url("acme")))
        c.post(setup_url("acme"), {"code": totp.code_at_step(secret, totp.step_at(time.time()))})
        return "newt"
    if kind == Kind.RECOVERY_CODE_USED:
        code = recovery_codes_replace(user=tina)[0]
        sign_in_with_app(c, "tina", code)
        return "tina"
    if kind == Kind.RECOVERY_CODES_REGENERATED:
        recovery_codes_replace(user=tina)
        signed_in_client(tina).post("/tenant/acme/account/", {"action": "regenerate-recovery-codes"})
        return "tina"
    if kind == Kind.MFA_RESET:
        client_a.post(f"/admin/accounts/user/{tina.pk}/reset-mfa/")
        return "tina"
    if kind == Kind.UNLOCK:
        client_a.post(f"/admin/accounts/user/{tina.pk}/unlock/")
        return "tina"
    if kind == Kind.PASSWORD_CHANGED:
        client_a.post(f"/admin/accounts/user/{tina.pk}/password/", {"password1": "Brand-new-pass-2031", "password2": "Brand-new-pass-2031"})
        return "tina"
    if kind == Kind.LOGOUT:
        signed_in_client(tina).post(logout_url("acme"))
        return "tina"
    if kind == Kind.REFRESH_TOKEN_REUSED:
        refresh = token_pair_issue(user=tina, amr=AMR_OTP)["refreshToken"]
        for _ in range(2):  # the second use of one refresh token
            c.post("/tenant/acme/v2/auth/token/refresh", {"refreshToken": refresh}, content_type="application/json")
        return "tina"
    if kind == Kind.PASSWORD_RESET_SENT:
        client_a.post(f"/admin/accounts/user/{tina.pk}/send-password-reset/")
        return "tina"
    if kind == Kind.PASSWORD_RESET:
        token = reset_token_make(tina)
        c.post(f"/tenant/acme/v2/auth/password/reset", {"token": token, "newPassword": "Brand-new-pass-2031"},
               content_type="application/json")
        return "tina"
    raise AssertionError(f"no trigger for {kind}")


ADMIN_ACTIONS = {Kind.MFA_RESET, Kind.UNLOCK, Kind.PASSWORD_CHANGED, Kind.PASSWORD_RESET_SENT}


@pytest.mark.parametrize("kind", Kind.values)
def test_every_kind_is_written_and_read_back_through_the_admin(frozen, kind, user_factory, tina, client_a, client_b, admin_a):
    username = trigger(kind, user_factory=user_factory, tina=tina, client_a=client_a)
    response = client_a.get(f"/admin/accounts/auditevent/?kind__exact={kind}")
    assert response.status_code == HTTPStatus.OK
    events = list(response.context["cl"].result_list)
    assert events, f"no {kind} event"
    assert {e.kind for e in events} == {kind}
    assert username in {e.username for e in events}
    event = next(e for e in events if e.username == username)
    assert event.tenant_id == "acme" and event.channel in ({"api"} if kind in (Kind.REFRESH_TOKEN_REUSED, Kind.PASSWORD_RESET) else {"web", "admin"})
    if kind in ADMIN_ACTIONS:
        assert (event.actor, event.channel) == (admin_a, "admin")
    detail = client_a.get(f"/admin/accounts/auditevent/{event.pk}/change/")
    assert detail.status_code == HTTPStatus.OK and username.encode() in detail.content
    # The other tenant's admin sees none of it.
    assert list(client_b.get(f"/admin/accounts/auditevent/?kind__exact={kind}").context["cl"].result_list) == []
    # And the API gives the same event to the tenant's admin.
    assert event.pk in {e["id"] for e in api_events(admin_a, event.user_id) if e["kind"] == kind}


def api_events(admin, user_id) -> list[dict]:
    token = token_pair_issue(user=admin, amr=AMR_OTP)["accessToken"]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url, events = f"/tenant/{admin.tenant_id}/v2/Users/{user_id}/events", []
    while url:
        response = api.get(url)
        assert response.status_code == HTTPStatus.OK, response.content
        body = response.json()
        events += body["results"]
        url = body["next"]
    return events


def test_trail_is_read_only_even_for_operators(client_ops, tina):
    event = AuditEvent.objects.create(tenant_id="acme", user=tina, username="tina", kind=Kind.SIGN_IN_FAILURE)
    base = "/admin/accounts/auditevent"
    assert client_ops.get(f"{base}/add/").status_code == HTTPStatus.FORBIDDEN
    assert client_ops.post(f"{base}/add/", {"kind": "unlock", "tenant": "acme"}).status_code == HTTPStatus.FORBIDDEN
    assert client_ops.post(f"{base}/{event.pk}/change/", {"kind": "unlock"}).status_code == HTTPStatus.FORBIDDEN
    assert client_ops.get(f"{base}/{event.pk}/delete/").status_code == HTTPStatus.FORBIDDEN
    assert client_ops.post(f"{base}/{event.pk}/delete/", {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN
    response = client_ops.post(f"{base}/", {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
    event.refresh_from_db()
    assert event.kind == Kind.SIGN_IN_FAILURE
    page = client_ops.get(f"{base}/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "Delete" not in page


def test_filters_by_channel_and_date(frozen, client_a, tina):
    AuditEvent.objects.create(tenant_id="acme", user=tina, username="tina", kind=Kind.SIGN_IN_FAILURE, channel="api")
    AuditEvent.objects.create(tenant_id="acme", user=tina, username="tina", kind=Kind.SIGN_IN_FAILURE, channel="web")
    events = client_a.get("/admin/accounts/auditevent/?channel=api").context["cl"].result_list
    assert [e.channel for e in events] == ["api"]
    assert len(client_a.get("/admin/accounts/auditevent/?" + urlencode({"created_at__gte": "2031-05-04 00:00:00+00:00"})).context["cl"].result_list) == 2
    assert len(client_a.get("/admin/accounts/auditevent/?" + urlencode({"created_at__gte": "2031-05-05 00:00:00+00:00"})).context["cl"].result_list) == 0
    assert len(client_a.get("/admin/accounts/auditevent/?created_at__year=2031&created_at__month=5").context["cl"].result_list) == 2

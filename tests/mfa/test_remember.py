"""Remembered browsers: after the second factor, "remember this browser" skips it on that
browser (a signed cookie plus a server-side record) or device (the API's deviceToken), until
an MFA reset, a password change or "forget all browsers" ends it. Forged or stale tokens are
ignored: the second factor is asked."""
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core import signing

from accounts.models import AuditEvent, MfaMethod
from accounts.services import user_set_password
from mfa.models import RememberedBrowser
from mfa.remember import COOKIE_NAME
from mfa.setup import mfa_reset
from tenants.services import tenant_update_policy
from tests.accounts.flows import account_url, code_now, password_step, verify_url
from tests.api.helpers import call, v2
from tests.conftest import PASSWORD, confirm_totp

Kind = AuditEvent.Kind


@pytest.fixture
def tina(tenant, user_factory):
    tenant_update_policy(tenant=tenant, remember_device_days=30)
    user = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


def remembered_sign_in(client, offset: int = 0):
    """Sign in with the app (the code ``offset`` steps from now) and tick "remember"; returns the cookie."""
    password_step(client, "acme", "tina")
    page = client.get(verify_url("acme"))
    assert b"Remember this browser for 30 days" in page.content
    response = client.post(verify_url("acme"), {"code": code_now(offset=offset), "remember": "on"})
    assert response.status_code == HTTPStatus.FOUND
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["path"] == "/tenant/acme/" and cookie["max-age"] == 30 * 86400
    client.post("/tenant/acme/logout/")
    return cookie


def skips(client) -> bool:
    response = password_step(client, "acme", "tina")
    if response.url == account_url("acme"):
        client.post("/tenant/acme/logout/")
        return True
    assert response.url == verify_url("acme")
    return False


def test_a_remembered_browser_skips_the_factor_and_is_audited(client, tina):
    remembered_sign_in(client)
    assert skips(client)
    kinds = list(AuditEvent.objects.filter(user=tina).values_list("kind", flat=True))
    assert Kind.BROWSER_REMEMBERED in kinds and Kind.REMEMBERED_BROWSER_USED in kinds
    assert RememberedBrowser.objects.get(user=tina).last_used_at is not None


def test_without_the_box_nothing_is_remembered(client, tina):
    password_step(client, "acme", "tina")
    client.get(verify_url("acme"))
    response = client.post(verify_url("acme"), {"code": code_now()})
    assert COOKIE_NAME not in response.cookies and not RememberedBrowser.objects.exists()


def test_off_by_default(client, user_factory):
    user = user_factory("tom", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    password_step(client, "acme", "tom")
    assert b"Remember this browser" not in client.get(verify_url("acme")).content


def test_mfa_reset_ends_it(client, tina):
    remembered_sign_in(client)
    mfa_reset(user=tina)
    confirm_totp(tina)
    assert not skips(client)


def test_password_change_ends_it(client, tina):
    remembered_sign_in(client)
    user_set_password(user=tina, password="Another-long-pass-2031")
    response = password_step(client, "acme", "tina", "Another-long-pass-2031")
    assert response.url == verify_url("acme")


def test_forget_all_browsers_ends_it(client, tina):
    remembered_sign_in(client)
    other = client.__class__()
    remembered_sign_in(other, offset=1)
    assert skips(client)  # signed in through the remembered browser
    password_step(client, "acme", "tina")
    response = client.post(account_url("acme"), {"action": "forget-browsers"})
    assert response.cookies[COOKIE_NAME].value == ""
    client.post("/tenant/acme/logout/")
    assert not skips(other)
    assert Kind.REMEMBERED_BROWSERS_FORGOTTEN in AuditEvent.objects.filter(user=tina).values_list("kind", flat=True)


def test_turning_the_policy_off_ends_it(client, tina):
    remembered_sign_in(client)
    tenant_update_policy(tenant=tina.tenant, remember_device_days=0)
    assert not skips(client)


@pytest.mark.parametrize("forge", ["garbage", "signed-other-user", "expired", "tampered"])
def test_forged_or_stale_cookies_are_ignored(client, tina, user_factory, forge, time_machine):
    cookie = remembered_sign_in(client)
    if forge == "garbage":
        client.cookies[COOKIE_NAME] = "x" * 50
    elif forge == "signed-other-user":
        other = user_factory("otto")
        client.cookies[COOKIE_NAME] = signing.dumps({"u": str(other.pk), "s": "abc"}, salt="gatehouse.mfa.remembered-browser", compress=True)
    elif forge == "expired":
        time_machine.move_to(RememberedBrowser.objects.get().expires_at + timedelta(seconds=1))
    else:
        client.cookies[COOKIE_NAME] = cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB")
    assert not skips(client)


def test_api_device_token(client, tina):
    first = call(client, "POST", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD}).json()
    done = call(client, "POST", v2("acme", "auth/mfa/verify"), {"mfaToken": first["mfaToken"], "code": code_now(), "rememberDevice": True})
    assert done.status_code == HTTPStatus.OK
    device_token = done.json()["deviceToken"]
    again = call(client, "POST", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD, "deviceToken": device_token}).json()
    assert "accessToken" in again and "mfaRequired" not in again
    forged = call(client, "POST", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD, "deviceToken": device_token + "x"}).json()
    assert forged["mfaRequired"] is True
    mfa_reset(user=tina)
    confirm_totp(tina)
    after = call(client, "POST", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD, "deviceToken": device_token}).json()
    assert after["mfaRequired"] is True

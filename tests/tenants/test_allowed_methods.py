"""allowedMethods: the second factors a tenant allows. The choose page, the admin and the
Users API offer and accept only those; a user whose method is no longer allowed chooses
again at the next sign-in (pages and API)."""
from http import HTTPStatus

import pytest

from accounts.models import MfaMethod, User
from accounts.tokens import AMR_OTP
from tenants.services import tenant_update_policy
from tests.accounts.flows import (
    account_url, choose_url, form_error_codes, last_outbox_code, password_step, setup_url, verify_url,
)
from tests.api.helpers import access_token, assert_error, call, v2
from tests.conftest import PASSWORD, confirm_totp


@pytest.fixture
def tina(user_factory):
    user = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


def test_default_allows_all_three(tenant):
    assert tenant.allowed_methods == ["totp", "email", "webauthn"]


def test_a_removed_method_makes_the_user_choose_again_on_the_pages(client, tenant, tina):
    tenant_update_policy(tenant=tenant, allowed_methods=["email", "webauthn"])
    assert password_step(client, "acme", "tina").url == choose_url("acme")
    page = client.get(choose_url("acme"))
    assert b'value="email"' in page.content and b'value="webauthn"' in page.content and b'value="totp"' not in page.content
    assert b"no longer allows" in page.content
    # The app cannot be chosen, even by a crafted form, nor used by going to the code page.
    response = client.post(choose_url("acme"), {"method": "totp"})
    assert form_error_codes(response, "method") == ["invalid_choice"]
    assert client.get(verify_url("acme")).url == choose_url("acme")
    assert client.post(choose_url("acme"), {"method": "email"}).url == verify_url("acme")
    client.get(verify_url("acme"))
    assert client.post(verify_url("acme"), {"code": last_outbox_code()}).url == account_url("acme")
    assert User.objects.get(pk=tina.pk).mfa_method == MfaMethod.EMAIL


def test_choosing_passkeys_leads_to_the_passkey_set_up(client, tenant, tina):
    tenant_update_policy(tenant=tenant, allowed_methods=["webauthn"])
    password_step(client, "acme", "tina")
    assert client.post(choose_url("acme"), {"method": "webauthn"}).url == setup_url("acme")
    assert b"Set up a passkey" in client.get(setup_url("acme")).content


def test_a_removed_method_makes_the_user_choose_again_through_the_api(client, tenant, tina):
    tenant_update_policy(tenant=tenant, allowed_methods=["email"])
    login = call(client, "POST", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD}).json()
    assert login["mfaMethod"] == "email" and login["enrollmentRequired"] is True
    # The old app's code is not a way in any more.
    assert call(client, "POST", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": login["mfaToken"]}).status_code == HTTPStatus.CONFLICT
    assert call(client, "POST", v2("acme", "auth/mfa/email/send"), {"mfaToken": login["mfaToken"]}).status_code == HTTPStatus.ACCEPTED
    done = call(client, "POST", v2("acme", "auth/mfa/verify"), {"mfaToken": login["mfaToken"], "code": last_outbox_code()})
    assert done.status_code == HTTPStatus.OK, done.content
    assert User.objects.get(pk=tina.pk).mfa_method == MfaMethod.EMAIL


def test_an_allowed_method_is_untouched(client, tenant, tina):
    tenant_update_policy(tenant=tenant, allowed_methods=["totp"])
    assert password_step(client, "acme", "tina").url == verify_url("acme")


def test_users_api_refuses_a_method_not_allowed_naming_the_field(client, tenant, user_factory):
    admin = user_factory("root", is_admin=True)
    token = access_token(admin, AMR_OTP)
    tenant_update_policy(tenant=tenant, allowed_methods=["totp", "webauthn"])
    body = assert_error(
        call(client, "POST", v2("acme", "Users"), {"username": "ed", "email": "ed@example.com", "mfaMethod": "email"}, token=token),
        HTTPStatus.BAD_REQUEST, "invalid_request",
    )
    assert "mfaMethod" in body["fields"]
    eve = user_factory("eve")
    body = assert_error(call(client, "PATCH", v2("acme", f"Users/{eve.pk}"), {"mfaMethod": "email"}, token=token), HTTPStatus.BAD_REQUEST, "invalid_request")
    assert "mfaMethod" in body["fields"]
    ok = call(client, "PATCH", v2("acme", f"Users/{eve.pk}"), {"mfaMethod": "webauthn"}, token=token)
    assert ok.status_code == HTTPStatus.OK and ok.json()["mfaMethod"] == "webauthn" and ok.json()["mfaEnrolled"] is False


def test_admin_offers_only_allowed_methods(tenant, user_factory, client):
    from tests.admin.conftest import signed_in_client

    admin = user_factory("root", is_admin=True)
    tenant_update_policy(tenant=tenant, allowed_methods=["webauthn"])
    browser = signed_in_client(admin)
    page = browser.get("/admin/accounts/user/add/").content.decode()
    assert 'value="webauthn"' in page and 'value="totp"' not in page and 'value="email"' not in page
    eve = user_factory("eve")
    page = browser.get(f"/admin/accounts/user/{eve.pk}/change/").content.decode()
    assert 'value="webauthn"' in page and 'value="totp"' not in page

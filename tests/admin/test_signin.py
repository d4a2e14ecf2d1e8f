"""Reaching the admin: only through Gatehouse's sign-in, with the second factor."""
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import authenticate

from accounts.models import AuditEvent, MfaMethod
from accounts.tokens import AMR_PASSWORD
from tests.accounts.flows import code_now, is_signed_in, password_step, verify_url
from tests.admin.conftest import signed_in_client
from tests.conftest import PASSWORD, confirm_totp


def admin_pages(target, tenant, event) -> list[str]:
    """Every kind of admin page, for one user, tenant and event."""
    u, t, e = f"/admin/accounts/user/{target.pk}", f"/admin/tenants/tenant/{tenant.pk}", f"/admin/accounts/auditevent/{event.pk}"
    return [
        "/admin/", "/admin/accounts/", "/admin/tenants/", "/admin/accounts/user/", "/admin/accounts/user/add/",
        "/admin/tenants/tenant/", "/admin/accounts/auditevent/", "/admin/password_change/",
        f"{u}/change/", f"{u}/delete/", f"{u}/history/", f"{u}/password/", f"{u}/reset-mfa/", f"{u}/unlock/",
        f"{t}/change/", f"{t}/history/", f"{e}/change/", f"{e}/history/",
    ]


def test_only_the_tenant_backend_is_installed(admin_a, admin_b):
    assert settings.AUTHENTICATION_BACKENDS == ["accounts.backends.TenantBackend"]
    # Same username in two tenants, right password: a password alone never makes a session.
    assert authenticate(username="boss", password=PASSWORD) is None


def test_admin_redirects_to_gatehouse_sign_in(client, tenant):
    response = client.get("/admin/accounts/user/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith("/admin/login/")
    response = client.get(response.url)
    assert response.status_code == HTTPStatus.FOUND
    parts = urlsplit(response.url)
    assert parts.path == "/login/"
    assert parse_qs(parts.query)["next"] == ["/admin/accounts/user/"]
    # The operator page asks for the tenant and hands over to its sign-in, next kept.
    response = client.post("/login/", {"tenant": tenant.id, "next": "/admin/accounts/user/"})
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == f"/tenant/{tenant.id}/login/?next=/admin/accounts/user/"


def test_tenant_admin_signs_in_with_code_and_lands_in_admin(client, admin_a, frozen):
    response = password_step(client, "acme", "boss", next_url="/admin/")
    assert response.url == verify_url("acme")
    response = client.post(verify_url("acme"), {"code": code_now()})
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/admin/"
    response = client.get("/admin/")
    assert response.status_code == HTTPStatus.OK
    assert b"Tenant administration" in response.content


def test_pending_sign_in_opens_no_admin_page(client, admin_a, user_factory):
    target = user_factory("alice", mfa_method=MfaMethod.TOTP)
    confirm_totp(target)
    password_step(client, "acme", "boss", next_url="/admin/")
    assert not is_signed_in(client, admin_a)
    event = AuditEvent.objects.filter(tenant_id="acme").first() or AuditEvent.objects.create(tenant_id="acme", kind="login_failure")
    for url in admin_pages(target, admin_a.tenant, event):
        response = client.get(url)
        assert response.status_code == HTTPStatus.FOUND, url
        assert response.url.startswith("/admin/login/"), url
    # Nor can it act: the reset is refused and nothing changes.
    response = client.post(f"/admin/accounts/user/{target.pk}/reset-mfa/")
    assert response.status_code == HTTPStatus.FOUND
    assert target.totp_device is not None
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.MFA_RESET).exists()


def test_admin_with_mfa_needs_a_session_that_passed_it(admin_a):
    client = signed_in_client(admin_a, amr=AMR_PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == HTTPStatus.FOUND
    response = client.get(response.url)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"second factor" in response.content


def test_signed_in_non_admin_is_told_no(client, user):
    password_step(client, "acme", "alice")
    assert is_signed_in(client, user)
    response = client.get("/admin/", follow=True)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert b"may not use the admin site" in response.content


def test_admin_without_second_factor_follows_the_tenant_policy(client, user_factory):
    # A tenant that does not require MFA: its admin without a factor signs in with the password.
    user_factory("plain-admin", is_admin=True)
    response = password_step(client, "acme", "plain-admin", next_url="/admin/")
    assert response.url == "/admin/"
    assert client.get("/admin/").status_code == HTTPStatus.OK


def test_operator_signs_in_through_the_operators_tenant(client, operator, frozen):
    response = client.post("/login/", {"tenant": "ops", "next": "/admin/"})
    assert response.url == "/tenant/ops/login/?next=/admin/"
    password_step(client, "ops", "root", next_url="/admin/")
    response = client.post(verify_url("ops"), {"code": code_now()})
    assert response.url == "/admin/"
    assert client.get("/admin/tenants/tenant/").status_code == HTTPStatus.OK


def test_admin_login_url_when_signed_in_goes_to_index(client_a):
    response = client_a.get("/admin/login/?next=/admin/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/admin/"


def test_admin_logout_is_audited(client_a, admin_a):
    response = client_a.post("/admin/logout/")
    assert response.status_code == HTTPStatus.OK
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGOUT)
    assert (event.user, event.channel) == (admin_a, "admin")
    assert client_a.get("/admin/").status_code == HTTPStatus.FOUND


def test_own_password_change_goes_to_the_service_backed_form(client_a, admin_a):
    response = client_a.get("/admin/password_change/")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == f"/admin/accounts/user/{admin_a.pk}/password/"

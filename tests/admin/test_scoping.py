"""A tenant admin sees and edits only their own tenant; an operator sees every tenant."""
from http import HTTPStatus

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from accounts.admin import UserAdmin
from accounts.audit import audit_record
from accounts.models import AuditEvent, User
from tenants.models import Tenant


@pytest.fixture
def world(admin_a, admin_b, user_factory, tenant, tenant_b):
    """Users and events in both tenants."""
    alice = user_factory("alice", tenant=tenant)
    bob = user_factory("bob", tenant=tenant_b)
    ev_a = audit_record(kind=AuditEvent.Kind.SIGN_IN_FAILURE, tenant_id=tenant.id, user=alice)
    ev_b = audit_record(kind=AuditEvent.Kind.SIGN_IN_FAILURE, tenant_id=tenant_b.id, user=bob)
    return {"alice": alice, "bob": bob, "ev_a": ev_a, "ev_b": ev_b}


def listed(response) -> list:
    assert response.status_code == HTTPStatus.OK
    return list(response.context["cl"].result_list)


def test_tenant_admin_lists_only_their_tenant(client_a, world, admin_a, admin_b):
    users = listed(client_a.get("/admin/accounts/user/"))
    assert set(users) == {admin_a, world["alice"]}
    assert listed(client_a.get("/admin/tenants/tenant/")) == [Tenant.objects.get(pk="acme")]
    assert listed(client_a.get("/admin/accounts/auditevent/")) == [world["ev_a"]]
    # Searching or filtering cannot reach across either.
    assert listed(client_a.get("/admin/accounts/user/?q=bob")) == []
    assert listed(client_a.get("/admin/accounts/auditevent/?q=bob")) == []
    page = client_a.get("/admin/accounts/user/").content.decode()
    assert "Beta Industries" not in page and "bob@example.com" not in page


def other_tenant_urls(world, tenant_b) -> list[str]:
    bob, ev = world["bob"], world["ev_b"]
    u, t, e = f"/admin/accounts/user/{bob.pk}", f"/admin/tenants/tenant/{tenant_b.pk}", f"/admin/accounts/auditevent/{ev.pk}"
    return [
        f"{u}/change/", f"{u}/delete/", f"{u}/history/", f"{u}/password/", f"{u}/reset-mfa/", f"{u}/unlock/",
        f"{t}/change/", f"{t}/delete/", f"{t}/history/", f"{e}/change/", f"{e}/history/",
    ]


def test_other_tenants_objects_are_404(client_a, world, tenant_b):
    for url in other_tenant_urls(world, tenant_b):
        assert client_a.get(url).status_code == HTTPStatus.NOT_FOUND, url
        assert client_a.post(url, {"post": "yes", "password1": "x-Very-long-pass-42", "password2": "x-Very-long-pass-42"}).status_code in (
            HTTPStatus.NOT_FOUND,
            HTTPStatus.FORBIDDEN,  # the event pages refuse POST outright: nobody changes an event
        ), url
    bob = User.objects.get(pk=world["bob"].pk)
    assert bob.check_password("correct-horse-battery-9")
    assert not AuditEvent.objects.filter(user=bob).exclude(pk=world["ev_b"].pk).exists()


def test_bulk_action_with_other_tenants_ids_touches_nothing(client_a, world):
    bob = world["bob"]
    User.objects.filter(pk=bob.pk).update(failed_password_count=3)
    response = client_a.post(
        "/admin/accounts/user/", {"action": "unlock_selected", "_selected_action": [str(bob.pk)], "post": "yes"}
    )
    assert response.status_code == HTTPStatus.FOUND and response.url == "/admin/accounts/user/"
    bob.refresh_from_db()
    assert bob.failed_password_count == 3
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.UNLOCK).exists()


def test_tenant_admin_cannot_create_or_delete_tenants(client_a, tenant):
    assert client_a.get("/admin/tenants/tenant/add/").status_code == HTTPStatus.FORBIDDEN
    response = client_a.post("/admin/tenants/tenant/add/", {"id": "evil", "name": "Evil"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert client_a.get(f"/admin/tenants/tenant/{tenant.pk}/delete/").status_code == HTTPStatus.FORBIDDEN
    assert list(Tenant.objects.values_list("pk", flat=True)) == ["acme"]


def test_tenant_admin_cannot_make_superusers_or_move_users(client_a, world, tenant_b):
    alice = world["alice"]
    response = client_a.post(
        f"/admin/accounts/user/{alice.pk}/change/",
        {"username": "alice", "email": "alice@example.com", "mfa_method": "none", "is_active": "on",
         "is_superuser": "on", "is_staff": "on", "tenant": tenant_b.pk},
    )
    assert response.status_code == HTTPStatus.FOUND
    alice.refresh_from_db()
    assert (alice.is_superuser, alice.is_staff, alice.tenant_id) == (False, False, "acme")
    response = client_a.post(
        "/admin/accounts/user/add/",
        {"username": "newbie", "email": "newbie@example.com", "mfa_method": "none", "tenant": tenant_b.pk,
         "is_superuser": "on", "password1": "Quite-a-long-pass-77", "password2": "Quite-a-long-pass-77"},
    )
    assert response.status_code == HTTPStatus.FOUND
    newbie = User.objects.get(username="newbie")
    assert (newbie.tenant_id, newbie.is_superuser, newbie.is_staff) == ("acme", False, False)


def test_tenant_admin_never_sees_operators_in_their_tenant(client_a, user_factory, tenant):
    root = user_factory("inside-root", tenant=tenant, is_superuser=True)
    assert root not in listed(client_a.get("/admin/accounts/user/"))
    assert client_a.get(f"/admin/accounts/user/{root.pk}/password/").status_code == HTTPStatus.NOT_FOUND


def test_foreign_key_choices_are_scoped(admin_a, operator, world):
    request = RequestFactory().get("/admin/accounts/user/add/")
    model_admin = UserAdmin(User, site)
    for field_name, model in (("tenant", Tenant),):
        field = User._meta.get_field(field_name)
        request.user = admin_a
        assert list(model_admin.formfield_for_foreignkey(field, request).queryset) == [admin_a.tenant]
        request.user = operator
        assert set(model_admin.formfield_for_foreignkey(field, request).queryset) == set(model.objects.all())
    actor = AuditEvent._meta.get_field("actor")
    request.user = admin_a
    assert set(model_admin.formfield_for_foreignkey(actor, request).queryset) == {admin_a, world["alice"]}


def test_operator_sees_every_tenant(client_ops, world, admin_a, admin_b, operator):
    users = listed(client_ops.get("/admin/accounts/user/"))
    assert {admin_a, admin_b, world["alice"], world["bob"], operator} <= set(users)
    assert {t.pk for t in listed(client_ops.get("/admin/tenants/tenant/"))} == {"acme", "beta", "ops"}
    assert {world["ev_a"], world["ev_b"]} <= set(listed(client_ops.get("/admin/accounts/auditevent/")))
    for url in other_tenant_urls(world, world["bob"].tenant):
        if "/delete/" in url and "tenant/" in url:
            continue
        assert client_ops.get(url).status_code == HTTPStatus.OK, url
    assert b"Beta Industries" in client_ops.get("/admin/accounts/user/?tenant__id__exact=beta").content


def test_operator_creates_a_tenant_with_the_service_defaults(client_ops):
    response = client_ops.post(
        "/admin/tenants/tenant/add/",
        {"id": "gamma", "name": "Gamma", "mfa_max_attempts": 5, "password_max_attempts": 10, "lockout_seconds": 300,
         "email_code_ttl_seconds": 600, "email_resend_seconds": 60, "issuer": "",
             "password_min_length": 12, "password_reset_ttl_seconds": 3600},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert Tenant.objects.get(pk="gamma").name == "Gamma"

"""Operators (superusers) do not exist for a tenant admin in the admin site either (issue 15),
even for a plain admin of the operators' own tenant: not listed, not offered as a choice,
every URL of theirs a 404, untouched by bulk actions, and no audit event naming them."""
from http import HTTPStatus

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from accounts.admin import AuditEventAdmin
from accounts.audit import audit_record
from accounts.models import AuditEvent, MfaMethod, User
from accounts.services import user_unlock
from mfa import crypto
from mfa.models import TOTPDevice
from tests.admin.conftest import signed_in_client
from tests.conftest import FIXED_SECRET, PASSWORD, confirm_totp

NEW_PASSWORD = "Attacker-chosen-pass-42"


@pytest.fixture
def ops_admin(operator, user_factory):
    """A plain tenant admin (not a superuser) of the operators' tenant."""
    user = user_factory("opsadmin", tenant=operator.tenant, is_admin=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


@pytest.fixture
def client_ops_admin(ops_admin):
    return signed_in_client(ops_admin)


@pytest.fixture
def carol(operator, user_factory):
    """A visible user of the operators' tenant."""
    return user_factory("carol", tenant=operator.tenant)


def listed(response) -> list:
    assert response.status_code == HTTPStatus.OK
    return list(response.context["cl"].result_list)


def assert_operator_untouched(operator) -> None:
    after = User.objects.get(pk=operator.pk)
    assert after.check_password(PASSWORD) and after.is_active and after.is_superuser
    device = TOTPDevice.objects.get(user=operator)
    assert device.confirmed_at is not None and crypto.decrypt(device.secret_encrypted) == FIXED_SECRET
    assert not AuditEvent.objects.filter(user=operator).exists()


def test_the_changelist_search_and_popups_never_show_an_operator(client_ops_admin, ops_admin, carol, operator):
    assert set(listed(client_ops_admin.get("/admin/accounts/user/"))) == {ops_admin, carol}
    assert listed(client_ops_admin.get("/admin/accounts/user/?q=root")) == []
    assert listed(client_ops_admin.get("/admin/accounts/user/?_to_field=id&_popup=1&q=root")) == []
    for field in ("user", "actor"):
        url = f"/admin/autocomplete/?app_label=accounts&model_name=auditevent&field_name={field}&term="
        response = client_ops_admin.get(url)
        assert response.status_code == HTTPStatus.OK
        assert {r["id"] for r in response.json()["results"]} == {str(ops_admin.pk), str(carol.pk)}


def operator_urls(operator) -> list[str]:
    u = f"/admin/accounts/user/{operator.pk}"
    return [f"{u}/change/", f"{u}/password/", f"{u}/delete/", f"{u}/history/", f"{u}/reset-mfa/", f"{u}/unlock/"]


def test_every_url_of_an_operator_is_404_and_changes_nothing(client_ops_admin, operator):
    for url in operator_urls(operator):
        assert client_ops_admin.get(url).status_code == HTTPStatus.NOT_FOUND, url
        response = client_ops_admin.post(
            url,
            {"post": "yes", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "username": "root",
             "email": "attacker@example.com", "mfa_method": "none"},
        )
        assert response.status_code == HTTPStatus.NOT_FOUND, url
    assert_operator_untouched(operator)


@pytest.mark.parametrize("action", ["reset_mfa_selected", "unlock_selected", "delete_selected"])
def test_a_bulk_action_with_an_operators_id_does_nothing_to_them(client_ops_admin, operator, action):
    User.objects.filter(pk=operator.pk).update(failed_password_count=3)
    response = client_ops_admin.post(
        "/admin/accounts/user/", {"action": action, "_selected_action": [str(operator.pk)], "post": "yes"}
    )
    assert response.status_code == HTTPStatus.FOUND and response.url == "/admin/accounts/user/"
    assert User.objects.get(pk=operator.pk).failed_password_count == 3
    assert_operator_untouched(operator)


def test_audit_events_naming_an_operator_are_hidden(client_ops_admin, ops_admin, carol, operator):
    own = audit_record(kind=AuditEvent.Kind.SIGN_IN_FAILURE, tenant_id="ops", user=operator)
    user_unlock(user=carol, actor=operator)
    done_by_operator = AuditEvent.objects.get(actor=operator)
    carols = audit_record(kind=AuditEvent.Kind.SIGN_IN_FAILURE, tenant_id="ops", user=carol)
    nobodys = audit_record(kind=AuditEvent.Kind.SIGN_IN_FAILURE, tenant_id="ops", username="nobody")  # no user, no actor
    assert listed(client_ops_admin.get("/admin/accounts/auditevent/")) == [nobodys, carols]
    assert listed(client_ops_admin.get("/admin/accounts/auditevent/?q=root")) == []
    for event in (own, done_by_operator):
        for page in ("change", "history"):
            url = f"/admin/accounts/auditevent/{event.pk}/{page}/"
            assert client_ops_admin.get(url).status_code == HTTPStatus.NOT_FOUND, url


def test_an_operator_is_never_a_foreign_key_choice(ops_admin, carol, operator):
    request = RequestFactory().get("/admin/accounts/auditevent/")
    request.user = ops_admin
    model_admin = AuditEventAdmin(AuditEvent, site)
    for name in ("user", "actor"):
        field = AuditEvent._meta.get_field(name)
        assert set(model_admin.formfield_for_foreignkey(field, request).queryset) == {ops_admin, carol}
    request.user = operator
    assert operator in model_admin.formfield_for_foreignkey(AuditEvent._meta.get_field("actor"), request).queryset


def test_an_operator_still_sees_and_manages_everyone(client_ops, operator, ops_admin, carol, admin_a, user_factory):
    other_root = user_factory("root2", tenant=operator.tenant, is_superuser=True)
    confirm_totp(other_root)
    assert {operator, other_root, ops_admin, carol, admin_a} <= set(listed(client_ops.get("/admin/accounts/user/")))
    for url in operator_urls(other_root):
        if not url.endswith("/delete/"):
            assert client_ops.get(url).status_code == HTTPStatus.OK, url
    event = audit_record(kind=AuditEvent.Kind.SIGN_IN_FAILURE, tenant_id="ops", user=other_root)
    assert event in listed(client_ops.get("/admin/accounts/auditevent/"))
    response = client_ops.post(
        "/admin/accounts/user/", {"action": "reset_mfa_selected", "_selected_action": [str(other_root.pk)], "post": "yes"}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert not TOTPDevice.objects.filter(user=other_root).exists()
    assert AuditEvent.objects.filter(user=other_root, actor=operator, kind=AuditEvent.Kind.MFA_RESET).exists()


def test_an_object_history_never_names_an_operator(client_ops_admin, ops_admin, carol, operator):
    """Django's history page lists every admin log entry of the object with the name of whoever
    made it; an operator's entries are not shown to a tenant admin (the operator does not exist
    for them), their own are."""
    from django.contrib.admin.models import CHANGE, LogEntry

    for admin_user, message in ((operator, "Changed by the platform"), (ops_admin, "Changed by the tenant")):
        LogEntry.objects.log_actions(admin_user.pk, [carol], CHANGE, change_message=message, single_object=True)
    page = client_ops_admin.get(f"/admin/accounts/user/{carol.pk}/history/")
    assert page.status_code == HTTPStatus.OK
    text = page.content.decode()
    assert "Changed by the tenant" in text and "opsadmin" in text
    assert "Changed by the platform" not in text and "root" not in text
    # The operator still sees everything.
    seen = signed_in_client(operator).get(f"/admin/accounts/user/{carol.pk}/history/").content.decode()
    assert "Changed by the platform" in seen and "Changed by the tenant" in seen

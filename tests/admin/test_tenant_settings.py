"""The tenant's settings page: the whole policy, explained, validated, saved by the service."""
from http import HTTPStatus

import pytest

from tenants.models import Tenant

POLICY = {"name": "Acme Corp", "mfa_max_attempts": 5, "password_max_attempts": 10, "lockout_seconds": 300,
          "email_code_ttl_seconds": 600, "email_resend_seconds": 60, "issuer": "",
          "password_min_length": 12, "password_reset_ttl_seconds": 3600}


def error_codes(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {field: [e.code for e in errors] for field, errors in form.errors.as_data().items()}


def test_settings_page_shows_the_whole_policy_with_help(client_a):
    response = client_a.get("/admin/tenants/tenant/acme/change/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for field in ("mfa_max_attempts", "password_max_attempts", "lockout_seconds", "mfa_required",
                  "email_code_ttl_seconds", "email_resend_seconds", "issuer", "name",
                  "password_min_length", "password_reset_ttl_seconds"):
        assert f'name="{field}"' in page, field
        help_text = str(Tenant._meta.get_field(field).help_text)
        assert help_text.split(".")[0].replace('"', "&quot;") in page, field
    assert 'name="id"' not in page  # fixed at creation
    assert "lockout period" in page and "until an admin unlocks" in page


def test_settings_are_saved(client_a):
    response = client_a.post("/admin/tenants/tenant/acme/change/", {**POLICY, "name": "Acme Ltd", "mfa_required": "on",
                                                                     "lockout_seconds": 900, "issuer": "Acme SSO"})
    assert response.status_code == HTTPStatus.FOUND
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.name, tenant.mfa_required, tenant.lockout_seconds, tenant.issuer) == ("Acme Ltd", True, 900, "Acme SSO")


@pytest.mark.parametrize(
    "field, value, code",
    [
        ("mfa_max_attempts", 0, "min_value"),
        ("mfa_max_attempts", 101, "max_value"),
        ("password_max_attempts", 0, "min_value"),
        ("lockout_seconds", 86401, "max_value"),
        ("email_code_ttl_seconds", 601, "max_value"),
        ("email_resend_seconds", 3601, "max_value"),
        ("password_min_length", 7, "min_value"),
        ("password_min_length", 129, "max_value"),
        ("password_reset_ttl_seconds", 299, "min_value"),
        ("password_reset_ttl_seconds", 86401, "max_value"),
        ("issuer", "Acme: SSO", "invalid_issuer"),
        ("issuer", "Acme\nSSO", "invalid_issuer"),
        ("issuer", "Acme\u200bSSO", "invalid_issuer"),
        ("issuer", "x" * 65, "max_length"),
        ("lockout_seconds", "soon", "invalid"),
        ("name", "", "required"),
    ],
)
def test_bad_values_are_refused_beside_the_field(client_a, field, value, code):
    response = client_a.post("/admin/tenants/tenant/acme/change/", {**POLICY, field: value})
    assert response.status_code == HTTPStatus.OK
    assert error_codes(response) == {field: [code]}
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.mfa_max_attempts, tenant.lockout_seconds, tenant.issuer) == (5, 300, "")


def test_operator_adds_tenant_with_a_valid_id_only(client_ops):
    response = client_ops.post("/admin/tenants/tenant/add/", {**POLICY, "id": "-bad", "name": "Bad"})
    assert error_codes(response) == {"id": ["invalid_tenant_id"]}
    response = client_ops.post("/admin/tenants/tenant/add/", {**POLICY, "id": "acme", "name": "Again"})
    assert error_codes(response) == {"id": ["unique"]}

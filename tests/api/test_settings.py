"""The Settings API: the tenant's policy, camelCase, validated by the model's own rules."""
from http import HTTPStatus

import pytest

from tenants.models import Tenant
from tests.api.helpers import assert_error, call, v2

DEFAULTS = {
    "mfaMaxAttempts": 5,
    "passwordMaxAttempts": 10,
    "lockoutSeconds": 300,
    "mfaRequired": False,
    "emailCodeTtlSeconds": 600,
    "emailResendSeconds": 60,
    "issuer": "Acme Corp",
    "passwordMinLength": 12,
    "passwordResetTtlSeconds": 3600,
}


def policy() -> dict:
    return Tenant.objects.values().get(pk="acme")


def test_get_settings(client, admin, admin_token):
    response = call(client, "get", v2("acme", "Settings"), token=admin_token)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == DEFAULTS


@pytest.mark.parametrize("method", ["put", "patch"])
def test_change_some_fields_keeps_the_rest(client, admin, admin_token, method):
    response = call(client, method, v2("acme", "Settings"), {"mfaMaxAttempts": 3, "mfaRequired": True}, token=admin_token)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {**DEFAULTS, "mfaMaxAttempts": 3, "mfaRequired": True}
    tenant = Tenant.objects.get(pk="acme")
    assert (tenant.mfa_max_attempts, tenant.mfa_required, tenant.lockout_seconds) == (3, True, 300)


def test_change_every_field(client, admin, admin_token):
    new = {
        "mfaMaxAttempts": 100,
        "passwordMaxAttempts": 1,
        "lockoutSeconds": 86400,
        "mfaRequired": True,
        "emailCodeTtlSeconds": 1,
        "emailResendSeconds": 0,
        "issuer": "Acme SSO",
        "passwordMinLength": 128,
        "passwordResetTtlSeconds": 300,
    }
    assert call(client, "put", v2("acme", "Settings"), new, token=admin_token).json() == new
    assert call(client, "get", v2("acme", "Settings"), token=admin_token).json() == new


def test_empty_issuer_goes_back_to_the_name(client, admin, admin_token):
    call(client, "patch", v2("acme", "Settings"), {"issuer": "Custom"}, token=admin_token)
    assert call(client, "patch", v2("acme", "Settings"), {"issuer": ""}, token=admin_token).json()["issuer"] == "Acme Corp"
    assert Tenant.objects.get(pk="acme").issuer == ""


@pytest.mark.parametrize("issuer", ["Zürich Bank", "東京 銀行 SSO"])
def test_an_issuer_of_unicode_letters_and_spaces_is_kept(client, admin, admin_token, issuer):
    assert call(client, "patch", v2("acme", "Settings"), {"issuer": issuer}, token=admin_token).json()["issuer"] == issuer
    assert Tenant.objects.get(pk="acme").issuer == issuer


@pytest.mark.parametrize(
    "body, field",
    [
        ({"mfaMaxAttempts": 0}, "mfaMaxAttempts"),
        ({"mfaMaxAttempts": 101}, "mfaMaxAttempts"),
        ({"passwordMaxAttempts": -1}, "passwordMaxAttempts"),
        ({"lockoutSeconds": 86401}, "lockoutSeconds"),
        ({"emailCodeTtlSeconds": 601}, "emailCodeTtlSeconds"),
        ({"emailResendSeconds": 3601}, "emailResendSeconds"),
        ({"passwordMinLength": 7}, "passwordMinLength"),
        ({"passwordMinLength": 129}, "passwordMinLength"),
        ({"passwordResetTtlSeconds": 299}, "passwordResetTtlSeconds"),
        ({"passwordResetTtlSeconds": 86401}, "passwordResetTtlSeconds"),
        ({"passwordMinLength": "12"}, "passwordMinLength"),
        ({"issuer": "a:b"}, "issuer"),
        ({"issuer": "x" * 65}, "issuer"),
        ({"issuer": "Acme\nEU"}, "issuer"),
        ({"issuer": "Acme\tEU"}, "issuer"),
        ({"issuer": "Acme\x7fEU"}, "issuer"),
        ({"issuer": "Ac\u200bme"}, "issuer"),
        ({"issuer": None}, "issuer"),
        ({"mfaMaxAttempts": "5"}, "mfaMaxAttempts"),
        ({"mfaMaxAttempts": 5.0}, "mfaMaxAttempts"),
        ({"mfaMaxAttempts": True}, "mfaMaxAttempts"),
        ({"mfaMaxAttempts": 10**30}, "mfaMaxAttempts"),
        ({"mfaRequired": "yes"}, "mfaRequired"),
        ({"mfaRequired": 1}, "mfaRequired"),
        ({"name": "Evil"}, "name"),
        ({"id": "evil"}, "id"),
        ({"mfa_max_attempts": 3}, "mfa_max_attempts"),
    ],
)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_bad_values_are_400_naming_the_field_and_change_nothing(client, admin, admin_token, body, field, method):
    before = policy()
    # A valid field alongside is not applied either.
    response = call(client, method, v2("acme", "Settings"), {"lockoutSeconds": 42, **body}, token=admin_token)
    fields = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")["fields"]
    assert field in fields and all(isinstance(m, str) for m in fields[field])
    assert policy() == before


def test_settings_of_another_tenant_are_out_of_reach(client, admin, admin_token, tenant_factory):
    tenant_factory("other")
    assert_error(call(client, "put", v2("other", "Settings"), {"mfaMaxAttempts": 1}, token=admin_token), 401, "invalid_token")
    assert Tenant.objects.get(pk="other").mfa_max_attempts == 5

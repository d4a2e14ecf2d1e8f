"""Tenants: the id, the MFA policy's bounds, and updating it."""
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.http import Http404

from tenants.models import Tenant
from tenants.selectors import tenant_get
from tenants.services import tenant_create, tenant_update_policy

# field, lowest allowed, highest allowed (contract's "Tenant MFA policy" table)
BOUNDS = [
    ("mfa_max_attempts", 1, 100),
    ("password_max_attempts", 1, 100),
    ("lockout_seconds", 1, 86400),
    ("email_code_ttl_seconds", 1, 600),
    ("email_resend_seconds", 0, 3600),
]


def test_defaults_follow_the_contract(db):
    tenant = tenant_create(tenant_id="plain", name="Plain")
    assert (tenant.mfa_max_attempts, tenant.password_max_attempts, tenant.lockout_seconds, tenant.mfa_required,
            tenant.email_code_ttl_seconds, tenant.email_resend_seconds, tenant.issuer) == (5, 10, 300, False, 600, 60, "")


@pytest.mark.parametrize(("field", "low", "high"), BOUNDS)
def test_each_bound_is_allowed(db, field, low, high):
    tenant_create(tenant_id="low-end", name="Low", **{field: low})
    tenant_create(tenant_id="high-end", name="High", **{field: high})
    assert getattr(Tenant.objects.get(pk="low-end"), field) == low
    assert getattr(Tenant.objects.get(pk="high-end"), field) == high


@pytest.mark.parametrize(("field", "value"), [(f, lo - 1) for f, lo, _ in BOUNDS] + [(f, hi + 1) for f, _, hi in BOUNDS])
def test_a_value_outside_its_range_is_refused_naming_the_field(db, field, value):
    with pytest.raises(ValidationError) as exc:
        tenant_create(tenant_id="outside", name="Outside", **{field: value})
    assert list(exc.value.message_dict) == [field]
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(("field", "value"), [(f, lo - 1) for f, lo, _ in BOUNDS] + [(f, hi + 1) for f, _, hi in BOUNDS])
def test_updating_outside_the_range_is_refused_and_saves_nothing(tenant, field, value):
    before = getattr(tenant, field)
    with pytest.raises(ValidationError) as exc:
        tenant_update_policy(tenant=tenant, **{field: value}, name="Should Not Stick")
    assert field in exc.value.message_dict
    fresh = Tenant.objects.get(pk=tenant.pk)
    assert getattr(fresh, field) == before and fresh.name == "Acme Corp"


@pytest.mark.parametrize("issuer", ["Acme:EU", ":", "a" * 65])
def test_a_bad_issuer_is_refused(db, issuer):
    with pytest.raises(ValidationError) as exc:
        tenant_create(tenant_id="issuer-co", name="Issuer Co", issuer=issuer)
    assert list(exc.value.message_dict) == ["issuer"]


def test_the_issuer_colon_error_has_its_code(db):
    with pytest.raises(ValidationError) as exc:
        tenant_create(tenant_id="issuer-co", name="Issuer Co", issuer="A:B")
    assert [e.code for e in exc.value.error_dict["issuer"]] == ["invalid_issuer"]


@pytest.mark.parametrize("issuer", ["A", "a" * 64, "Acme Corp (EU) & Co.", "Zürich Bank", "東京 銀行", "Ελληνική Τράπεζα"])
def test_a_good_issuer_is_kept(db, issuer):
    assert tenant_create(tenant_id="issuer-co", name="Issuer Co", issuer=issuer).effective_issuer == issuer


# A line break, a tab, DEL, a zero-width space, a right-to-left override, a lone surrogate.
UNPRINTABLE_ISSUERS = ["Acme\nEU", "Acme\tEU", "Acme\x7f", "Ac\u200bme", "Acme\u202eUE", "Acme\ud800"]


@pytest.mark.parametrize("issuer", UNPRINTABLE_ISSUERS)
def test_an_issuer_with_an_unprintable_character_is_refused(db, issuer):
    with pytest.raises(ValidationError) as exc:
        tenant_create(tenant_id="issuer-co", name="Issuer Co", issuer=issuer)
    assert [e.code for e in exc.value.error_dict["issuer"]] == ["invalid_issuer"]
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("issuer", UNPRINTABLE_ISSUERS)
def test_updating_to_an_unprintable_issuer_is_refused_and_saves_nothing(tenant, issuer):
    with pytest.raises(ValidationError) as exc:
        tenant_update_policy(tenant=tenant, issuer=issuer, mfa_max_attempts=3)
    assert [e.code for e in exc.value.error_dict["issuer"]] == ["invalid_issuer"]
    assert Tenant.objects.values_list("issuer", "mfa_max_attempts").get(pk=tenant.pk) == ("", 5)


def test_the_migration_makes_a_stored_issuer_printable(tenant_factory):
    """tenants 0002: an issuer stored before the rule loses its unprintable characters."""
    printable_issuers = import_module("tenants.migrations.0002_issuer_printable").printable_issuers
    tenant_factory("bad", issuer="x")
    tenant_factory("blank-only", issuer="x")
    tenant_factory("good", issuer="Acme SSO")
    Tenant.objects.filter(pk="bad").update(issuer="Acme\n\tSSO\u200b")  # as stored before the rule: no validation
    Tenant.objects.filter(pk="blank-only").update(issuer="\n")
    printable_issuers(django_apps, None)
    assert dict(Tenant.objects.values_list("pk", "issuer")) == {"bad": "Acme SSO", "blank-only": "", "good": "Acme SSO"}


def test_the_issuer_defaults_to_the_display_name_without_colons(db):
    assert tenant_create(tenant_id="named", name="Acme: Europe").effective_issuer == "Acme  Europe"
    assert tenant_create(tenant_id="long-name", name="N" * 100).effective_issuer == "N" * 64


@pytest.mark.parametrize("tenant_id", ["ab", "a1", "0-x", "a" * 63, "acme-corp-2"])
def test_good_tenant_ids(db, tenant_id):
    assert tenant_create(tenant_id=tenant_id, name="T").id == tenant_id


@pytest.mark.parametrize("tenant_id", ["a", "-ab", "Acme", "ac_me", "ac me", "a" * 64, "acmé", "acme\n", ""])
def test_bad_tenant_ids(db, tenant_id):
    with pytest.raises(ValidationError) as exc:
        tenant_create(tenant_id=tenant_id, name="T")
    assert "id" in exc.value.message_dict
    assert not Tenant.objects.exists()


def test_a_tenant_id_is_unique(tenant):
    with pytest.raises(ValidationError) as exc:
        tenant_create(tenant_id="acme", name="Second Acme")
    assert "id" in exc.value.message_dict
    assert Tenant.objects.get(pk="acme").name == "Acme Corp"


def test_unknown_policy_fields_are_refused(tenant):
    with pytest.raises(ValidationError) as exc:
        tenant_update_policy(tenant=tenant, max_attempts=3)
    assert list(exc.value.message_dict) == ["max_attempts"]
    with pytest.raises(ValueError):
        tenant_create(tenant_id="x-co", name="X", colour="red")


def test_update_changes_only_what_is_given(tenant):
    updated = tenant_update_policy(tenant=tenant, mfa_required=True, lockout_seconds=60)
    fresh = Tenant.objects.get(pk="acme")
    assert (fresh.mfa_required, fresh.lockout_seconds, fresh.mfa_max_attempts, fresh.name) == (True, 60, 5, "Acme Corp")
    assert updated.lockout_seconds == tenant.lockout_seconds == 60


def test_the_display_name_can_change_the_id_cannot(tenant):
    tenant_update_policy(tenant=tenant, name="Acme Renamed")
    assert Tenant.objects.get(pk="acme").name == "Acme Renamed"
    with pytest.raises(ValidationError):
        tenant_update_policy(tenant=tenant, id="other")


def test_tenant_get_is_404_for_an_unknown_id(db):
    with pytest.raises(Http404):
        tenant_get(tenant_id="missing")


def test_policy_applies_at_sign_in(client, tenant_factory, user_factory):
    """The tenant's own password limit, not the default, decides the lock."""
    from tests.accounts.flows import form_error_codes, password_step

    tenant = tenant_factory("tight", "Tight", password_max_attempts=1)
    user_factory("ivy", tenant=tenant)
    assert form_error_codes(password_step(client, "tight", "ivy", "wrong-password-x")) == ["invalid_credentials"]
    assert form_error_codes(password_step(client, "tight", "ivy")) == ["locked_out"]


def test_the_issuer_made_from_the_name_follows_the_issuer_rule(tenant_factory):
    tenant = tenant_factory("named", "Acme\nCorp\u200b")
    assert tenant.effective_issuer == "Acme Corp"

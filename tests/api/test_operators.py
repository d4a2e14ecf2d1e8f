"""Operators (superusers) do not exist for a tenant admin in the Users API (issue 15): not
listed, their id the same 404 as an unknown one, for every method, and nothing changes.

Two set-ups: a plain admin of the operators' own tenant (``ops``), and an admin of a customer
tenant (``acme``) holding a superuser. An operator who is also an admin still sees everyone.
"""
import uuid
from http import HTTPStatus

import pytest

from accounts.models import AuditEvent, MfaMethod, User
from accounts.tokens import AMR_OTP
from mfa import crypto
from mfa.models import TOTPDevice
from tests.api.helpers import access_token, call, v2
from tests.conftest import FIXED_SECRET, confirm_totp
from mfa.setup import mfa_reset

NEW_PASSWORD = "attacker-chosen-pass-42"


@pytest.fixture
def ops(tenant_factory):
    return tenant_factory("ops", "Platform operators", mfa_required=True)


def _with_app(user):
    confirm_totp(user)
    return user


@pytest.fixture(params=["operators-tenant", "customer-tenant"])
def scene(request, ops, tenant, user_factory):
    """A plain tenant admin, an operator of that same tenant, and a visible user beside them."""
    home = ops if request.param == "operators-tenant" else tenant
    admin = _with_app(user_factory("plainadmin", tenant=home, is_admin=True, mfa_method=MfaMethod.TOTP))
    operator = _with_app(user_factory("root", tenant=home, is_superuser=True, mfa_method=MfaMethod.TOTP))
    alice = user_factory("alice", tenant=home)
    return {"tenant": home, "admin": admin, "operator": operator, "alice": alice, "token": access_token(admin, AMR_OTP)}


def _names(response) -> list[str]:
    assert response.status_code == HTTPStatus.OK, response.content[:300]
    return [u["username"] for u in response.json()["results"]]


def test_the_list_never_shows_an_operator(client, scene):
    url, token = v2(scene["tenant"].pk, "Users"), scene["token"]
    assert _names(call(client, "get", url, token=token)) == ["plainadmin", "alice"]
    assert _names(call(client, "get", url + "?username=ROOT", token=token)) == []
    assert _names(call(client, "get", url + "?email=root@example.com", token=token)) == []


ATTACKS = [
    ("get", "Users/{id}", None),
    ("put", "Users/{id}", {"password": NEW_PASSWORD, "resetTOTP": True}),
    ("patch", "Users/{id}", {"password": NEW_PASSWORD, "resetTOTP": True}),
    ("patch", "Users/{id}", {"isActive": False, "email": "attacker@example.com", "unlock": True}),
    ("delete", "Users/{id}", None),
    ("get", "Users/{id}/events", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ATTACKS)
def test_an_operators_id_is_the_same_404_as_an_unknown_one_and_changes_nothing(client, scene, method, path, body):
    operator, token, tenant_id = scene["operator"], scene["token"], scene["tenant"].pk
    before = User.objects.get(pk=operator.pk)
    events_before = AuditEvent.objects.count()

    theirs = call(client, method, v2(tenant_id, path.format(id=operator.pk)), body, token=token)
    unknown = call(client, method, v2(tenant_id, path.format(id=uuid.uuid4())), body, token=token)

    assert theirs.status_code == unknown.status_code == HTTPStatus.NOT_FOUND, theirs.content[:300]
    assert theirs.json() == unknown.json() and theirs.json()["error"] == "not_found"
    after = User.objects.get(pk=operator.pk)
    assert (after.password, after.email, after.is_active, after.is_superuser) == (
        before.password, before.email, True, True
    )
    assert after.check_password("correct-horse-battery-9") and not after.check_password(NEW_PASSWORD)
    device = TOTPDevice.objects.get(user=operator)
    assert device.confirmed_at is not None and crypto.decrypt(device.secret_encrypted) == FIXED_SECRET
    assert AuditEvent.objects.count() == events_before


def test_events_of_a_visible_user_hide_what_an_operator_did(client, scene):
    """The operator reset alice's MFA: her admin sees her other events, not the operator's act."""
    alice, operator = scene["alice"], scene["operator"]
    mfa_reset(user=alice, actor=operator)
    mfa_reset(user=alice, actor=scene["admin"])
    response = call(client, "get", v2(scene["tenant"].pk, f"Users/{alice.pk}/events"), token=scene["token"])
    assert response.status_code == HTTPStatus.OK
    events = response.json()["results"]
    assert [(e["kind"], e["actor"]) for e in events] == [("mfa_reset", str(scene["admin"].pk))]
    assert str(operator.pk) not in response.content.decode()


def test_an_operator_who_is_an_admin_still_sees_and_manages_everyone(client, ops, user_factory):
    lead = _with_app(user_factory("lead", tenant=ops, is_admin=True, is_superuser=True, mfa_method=MfaMethod.TOTP))
    root = _with_app(user_factory("root", tenant=ops, is_superuser=True, mfa_method=MfaMethod.TOTP))
    plain = user_factory("plainadmin", tenant=ops, is_admin=True)
    token = access_token(lead, AMR_OTP)
    assert _names(call(client, "get", v2("ops", "Users"), token=token)) == ["lead", "root", "plainadmin"]
    assert _names(call(client, "get", v2("ops", "Users") + "?username=root", token=token)) == ["root"]
    assert call(client, "get", v2("ops", f"Users/{root.pk}"), token=token).json()["username"] == "root"
    response = call(client, "patch", v2("ops", f"Users/{root.pk}"), {"resetTOTP": True}, token=token)
    assert response.status_code == HTTPStatus.OK
    assert not TOTPDevice.objects.filter(user=root).exists()
    events = call(client, "get", v2("ops", f"Users/{root.pk}/events"), token=token).json()["results"]
    assert [(e["kind"], e["actor"]) for e in events] == [("mfa_reset", str(lead.pk))]
    assert call(client, "delete", v2("ops", f"Users/{plain.pk}"), token=token).status_code == HTTPStatus.NO_CONTENT

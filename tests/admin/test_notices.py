"""The security notices: templated, with the tenant's name, and overridable by the operator."""
import time

import pytest
from django.core import mail

from accounts.models import MfaMethod
from mfa import totp
from tenants.services import tenant_update_policy
from tests.accounts.flows import manual_key, password_step, setup_url
from tests.conftest import confirm_totp, run_notices


@pytest.fixture
def named_tenant(tenant):
    tenant_update_policy(tenant=tenant, name="R&D <Labs>")
    return tenant


def test_locked_notice(client, named_tenant, user):
    tenant_update_policy(tenant=named_tenant, password_max_attempts=1, lockout_seconds=600)
    password_step(client, "acme", "alice", "wrong-password")
    run_notices()
    message = mail.outbox[-1]
    assert message.to == ["alice@example.com"]
    assert message.subject == "R&D <Labs>: your account is locked for now"
    assert "R&D <Labs> account, so it is locked for 10 minutes" in message.body


def test_factor_setup_notice(client, named_tenant, user_factory, frozen):
    user_factory("newt", mfa_method=MfaMethod.TOTP)
    password_step(client, "acme", "newt")
    secret = manual_key(client.get(setup_url("acme")))
    client.post(setup_url("acme"), {"code": totp.code_at_step(secret, totp.step_at(time.time()))})
    run_notices()
    message = mail.outbox[-1]
    assert message.subject == "R&D <Labs>: a second factor was set up on your account"
    assert "your R&D <Labs> account: Authenticator app" in message.body


def test_mfa_reset_notice(client_a, named_tenant, user_factory):
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    client_a.post(f"/admin/accounts/user/{tina.pk}/reset-mfa/")
    run_notices()
    message = mail.outbox[-1]
    assert message.subject == "R&D <Labs>: the second factor of your account was reset"
    assert "An administrator of R&D <Labs> reset" in message.body and "new QR code" in message.body


def test_operator_overrides_a_notice_with_a_template_dir(client_a, user_factory, settings, tmp_path):
    folder = tmp_path / "accounts" / "email"
    folder.mkdir(parents=True)
    (folder / "mfa_reset_subject.txt").write_text("[{{ tenant.name }}] Security notice\n")
    (folder / "mfa_reset_message.txt").write_text("Dear {{ user.username }}, {{ tenant.name }} reset your MFA.\n")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    client_a.post(f"/admin/accounts/user/{tina.pk}/reset-mfa/")
    run_notices()
    message = mail.outbox[-1]
    assert (message.subject, message.body) == ("[Acme Corp] Security notice", "Dear tina, Acme Corp reset your MFA.\n")

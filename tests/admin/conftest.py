"""Fixtures for the admin site: two tenants, their admins, an operator, and signed-in clients."""
from datetime import datetime, timezone

import pytest
import time_machine
from django.test import Client

from accounts.models import MfaMethod
from accounts.tokens import AMR_OTP
from flows import pending as pending_sign_in
from tests.conftest import confirm_totp

FROZEN = datetime(2031, 5, 4, 10, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def frozen():
    """Time stands still (at a known instant), so a TOTP code is known in advance."""
    with time_machine.travel(FROZEN, tick=False) as traveller:
        yield traveller


@pytest.fixture
def tenant_b(tenant_factory):
    return tenant_factory("beta", "Beta Industries")


@pytest.fixture
def admin_a(user_factory, tenant):
    """The tenant admin of ``acme``, with an authenticator app (FIXED_SECRET)."""
    user = user_factory("boss", tenant=tenant, is_admin=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


@pytest.fixture
def admin_b(user_factory, tenant_b):
    """The tenant admin of ``beta``: same username as ``admin_a``, another person."""
    user = user_factory("boss", tenant=tenant_b, is_admin=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


@pytest.fixture
def operator(tenant_factory, user_factory):
    ops = tenant_factory("ops", "Platform operators", mfa_required=True)
    user = user_factory("root", tenant=ops, is_superuser=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


def signed_in_client(user, *, amr=AMR_OTP) -> Client:
    """A client whose session finished Gatehouse's sign-in (``amr`` as recorded by the pages)."""
    client = Client()
    client.force_login(user, backend="accounts.backends.TenantBackend")
    session = client.session
    session[pending_sign_in.AMR_SESSION_KEY] = list(amr)
    session.save()
    return client


@pytest.fixture
def client_a(admin_a):
    return signed_in_client(admin_a)


@pytest.fixture
def client_b(admin_b):
    return signed_in_client(admin_b)


@pytest.fixture
def client_ops(operator):
    return signed_in_client(operator)


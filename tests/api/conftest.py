"""Fixtures for the REST API tests."""
import pytest

from accounts.models import MfaMethod
from accounts.tokens import AMR_OTP
from tests.api.helpers import NOW, access_token
from tests.conftest import confirm_totp, freeze_at


frozen = freeze_at(NOW)


@pytest.fixture
def admin(user_factory):
    """A tenant admin with the authenticator app (FIXED_SECRET)."""
    user = user_factory("root", is_admin=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


@pytest.fixture
def admin_token(admin):
    return access_token(admin, AMR_OTP)


"""Issue 15, item 2: an MFA reset ends the user's browser sessions, as a password change
does (a new security stamp changes the session's auth hash), and ends unfinished sign-ins."""
from http import HTTPStatus

import pytest

from accounts.models import MfaMethod
from accounts.services import user_set_password
from tests.accounts.flows import account_url, is_signed_in, last_outbox_code, password_step, verify_url
from tests.conftest import confirm_totp
from mfa.setup import mfa_reset


@pytest.fixture
def signed_in(client, user_factory):
    user = user_factory("sam", mfa_method=MfaMethod.EMAIL)
    password_step(client, user.tenant_id, "sam")
    client.get(verify_url(user.tenant_id))  # the code page mails the code
    client.post(verify_url(user.tenant_id), {"code": last_outbox_code()})
    assert is_signed_in(client, user)
    return user


@pytest.mark.parametrize("remedy", ["mfa_reset", "password_change"])
def test_the_remedy_ends_the_browser_session(client, signed_in, remedy):
    if remedy == "mfa_reset":
        mfa_reset(user=signed_in)
    else:
        user_set_password(user=signed_in, password="Another-long-pass-2031")
    response = client.get(account_url(signed_in.tenant_id))
    assert response.status_code == HTTPStatus.FOUND and "/login/" in response["Location"]
    assert not is_signed_in(client, signed_in)  # Django flushed the session


def test_an_mfa_reset_ends_an_unfinished_sign_in(client, user_factory):
    user = user_factory("tess", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    password_step(client, user.tenant_id, "tess")
    assert client.get(verify_url(user.tenant_id)).status_code == HTTPStatus.OK
    mfa_reset(user=user)
    response = client.get(verify_url(user.tenant_id))
    assert response.status_code == HTTPStatus.FOUND and "/login/" in response["Location"]

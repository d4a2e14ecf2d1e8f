"""Helpers for the REST API tests (fixtures are in conftest.py)."""
import json
import time
from datetime import UTC, datetime

from accounts.models import MfaMethod
from accounts.tokens import AMR_OTP, AMR_PASSWORD, token_pair_issue
from mfa import totp
from tests.conftest import FIXED_SECRET

# A fixed instant in the middle of a TOTP step, so codes are known and never straddle a step.
NOW = datetime(2030, 5, 17, 12, 0, 10, tzinfo=UTC)


def v2(tenant_id: str, path: str) -> str:
    return f"/tenant/{tenant_id}/v2/{path}"


def call(client, method: str, url: str, body=None, *, token: str | None = None, raw: bytes | str | None = None,
         content_type: str | None = "application/json", **extra):
    """One API call with Django's test client; ``body`` is sent as JSON, ``raw`` as is."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    kwargs = {"data": data} if data is not None else {}
    if content_type is not None and data is not None:
        kwargs["content_type"] = content_type
    return getattr(client, method.lower())(url, **kwargs, **headers, **extra)


def assert_error(response, status, code: str):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def code_now(secret: str = FIXED_SECRET, *, offset: int = 0) -> str:
    return totp.code_at_step(secret, totp.step_at(time.time()) + offset)


def access_token(user, amr=None) -> str:
    """An access token minted by the service, as a completed sign-in would get."""
    if amr is None:
        amr = AMR_OTP if user.mfa_method != MfaMethod.NONE else AMR_PASSWORD
    return token_pair_issue(user=user, amr=amr)["accessToken"]

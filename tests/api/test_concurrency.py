"""Refresh rotation under parallel use, on a real database (PostgreSQL), threads with their own
connections: of N simultaneous uses of one refresh token exactly one gets a new pair."""
from collections import Counter

import pytest

from accounts.errors import InvalidRefreshToken
from accounts.tokens import AMR_PASSWORD, token_pair_issue, token_refresh
from mfa.setup import mfa_reset
from tests.conftest import in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 12


def test_parallel_refreshes_of_one_token_rotate_once(postgres, tenant, user):
    refresh = token_pair_issue(user=user, amr=AMR_PASSWORD)["refreshToken"]
    outcomes = in_parallel(THREADS, lambda: token_refresh(refresh_token=refresh, tenant_id=tenant.id))
    assert outcomes == Counter({"ok": 1, "invalid_token": THREADS - 1})


def test_a_revocation_racing_refreshes_leaves_no_working_token(postgres, tenant, user):
    """Issue 15, item 2: refreshes of one chain race an MFA reset; once the reset has
    returned, no token the refreshes obtained works."""
    for _ in range(5):
        held = [token_pair_issue(user=user, amr=AMR_PASSWORD)["refreshToken"]]

        def refresh_on():
            for _ in range(20):
                try:
                    held.append(token_refresh(refresh_token=held[-1], tenant_id=tenant.id)["refreshToken"])
                except InvalidRefreshToken:
                    return

        def reset():
            mfa_reset(user=user)

        calls = iter([refresh_on, reset])
        in_parallel(2, lambda: next(calls)())
        for token in held:
            with pytest.raises(InvalidRefreshToken):
                token_refresh(refresh_token=token, tenant_id=tenant.id)

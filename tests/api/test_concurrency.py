"""Refresh rotation under parallel use, on a real database (PostgreSQL), threads with their own
connections: of N simultaneous uses of one refresh token exactly one gets a new pair."""
from collections import Counter

import pytest

from accounts.tokens import AMR_PASSWORD, token_pair_issue, token_refresh
from tests.conftest import in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 12


def test_parallel_refreshes_of_one_token_rotate_once(postgres, tenant, user):
    refresh = token_pair_issue(user=user, amr=AMR_PASSWORD)["refreshToken"]
    outcomes = in_parallel(THREADS, lambda: token_refresh(refresh_token=refresh, tenant_id=tenant.id))
    assert outcomes == Counter({"ok": 1, "invalid_token": THREADS - 1})

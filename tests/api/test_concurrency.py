"""Refresh rotation under parallel use, on a real database (PostgreSQL), threads with their own
connections: of N simultaneous uses of one refresh token exactly one gets a new pair."""
import threading
from collections import Counter

import pytest
from django.db import connection

from accounts.errors import AuthFailure
from accounts.tokens import AMR_PASSWORD, token_pair_issue, token_refresh

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 12


def test_parallel_refreshes_of_one_token_rotate_once(postgres, tenant, user):
    refresh = token_pair_issue(user=user, amr=AMR_PASSWORD)["refreshToken"]
    barrier = threading.Barrier(THREADS, timeout=30)
    outcomes, lock = [], threading.Lock()

    def worker():
        try:
            barrier.wait()
            try:
                token_refresh(refresh_token=refresh, tenant=tenant)
                outcome = "ok"
            except AuthFailure as exc:
                outcome = exc.code
            except Exception as exc:  # noqa: BLE001 — reported, so the test fails with the reason
                outcome = f"crash: {exc!r}"
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert Counter(outcomes) == Counter({"ok": 1, "invalid_token": THREADS - 1})

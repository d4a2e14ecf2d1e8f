"""Whether a username exists must not show: unknown user, wrong password, locked user and a
user of another tenant are compared on status, body and median time of 10 tries."""
import re
import statistics
import time
from http import HTTPStatus

import pytest

from tests.e2e.conftest import PASSWORD, Browserless

pytestmark = pytest.mark.e2e

SAMPLES = 10


def normalized(html: str, username: str) -> str:
    """The page with what legitimately differs taken out: CSRF token, the echoed username,
    and numbers (the time left on a lock)."""
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    html = html.replace(f'value="{username}"', 'value=""')
    return re.sub(r"\d+", "N", html)


def timed_login(client: Browserless, tenant: str, username: str, password: str) -> tuple[int, str, float]:
    _, token = client.csrf(f"/tenant/{tenant}/login/")
    start = time.perf_counter()
    response = client.http.post(f"/tenant/{tenant}/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token})
    elapsed = time.perf_counter() - start
    return response.status_code, normalized(response.text, username), elapsed


def compare(cases: dict[str, tuple[str, str, str]], base: str) -> dict[str, dict]:
    """Interleaved samples of every case (so load drifts hit them alike)."""
    client = Browserless(base)
    results = {name: {"status": set(), "body": set(), "times": []} for name in cases}
    try:
        for _ in range(SAMPLES):
            for name, (tenant, username, password) in cases.items():
                status, body, elapsed = timed_login(client, tenant, username, password)
                results[name]["status"].add(status)
                results[name]["body"].add(body)
                results[name]["times"].append(elapsed)
    finally:
        client.close()
    return results


def assert_alike(results: dict[str, dict]) -> None:
    statuses = {frozenset(r["status"]) for r in results.values()}
    assert len(statuses) == 1, {k: r["status"] for k, r in results.items()}
    bodies = {b for r in results.values() for b in r["body"]}
    assert len(bodies) == 1, "the pages differ between cases"
    medians = {k: statistics.median(r["times"]) for k, r in results.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    # Loose: the dummy Argon2 hash makes them close; a skipped hash would be many times faster.
    assert slowest - fastest < max(0.5 * slowest, 0.01), medians


def test_unknown_user_wrong_password_and_other_tenant_look_the_same(main_stack):
    results = compare(
        {
            "unknown user": ("enum", "nobody-here", PASSWORD),
            "wrong password": ("enum", "erin", "not-the-password-1"),
            "user of another tenant": ("enum", "tina", PASSWORD),
        },
        main_stack.server.url,
    )
    assert results["unknown user"]["status"] == {HTTPStatus.OK}  # the form again, with the error
    assert_alike(results)


def test_a_locked_user_looks_like_a_locked_unknown_user(main_stack):
    """globex locks after 3 failed passwords: a real user and an unknown name, both locked,
    answer alike, even with the right password."""
    client = Browserless(main_stack.server.url)
    try:
        for username in ("locky", "ghost"):
            for _ in range(3):
                client.login("globex", username, "wrong-password-x")
    finally:
        client.close()
    assert main_stack.db.scalar("SELECT locked_until IS NOT NULL FROM accounts_user WHERE tenant_id='globex' AND username='locky'")
    results = compare(
        {"locked user, right password": ("globex", "locky", PASSWORD), "locked unknown user": ("globex", "ghost", PASSWORD)},
        main_stack.server.url,
    )
    assert "locked" in next(iter(results["locked user, right password"]["body"])).lower()
    assert_alike(results)

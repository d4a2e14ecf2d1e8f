"""The per-IP limit of the sign-in calls (``accounts.ratelimit``): a sliding limit that holds in
every window, one budget for the pages and the API, fail closed when the cache is down."""
import bisect
import random
import threading
from http import HTTPStatus

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from accounts.models import User
from accounts.ratelimit import Verdict, client_key, client_refund, sliding_window_hit, sliding_window_refund
from tests.accounts.flows import choose_url, login_url, setup_url, verify_url
from tests.api.helpers import assert_error, call, v2
from tests.conftest import PASSWORD, free_port

# A whole minute of the clock (1_700_000_040 = 60 × 28_333_334): second 59 of one minute and
# second 0 of the next are MINUTE + 59 and MINUTE + 60.
MINUTE = 1_700_000_040
KEY = "throttle_auth_192.0.2.1"


@pytest.fixture
def store():
    """A cache of its own (local memory): each test starts empty, whatever CACHE_URL says."""
    cache = LocMemCache(f"ratelimit-test-{random.random()}", {})
    yield cache
    cache.clear()


def hit(cache, now: float, *, limit: int = 3, duration: int = 60, key: str = KEY):
    return sliding_window_hit(cache=cache, key=key, limit=limit, duration=duration, now=now)


def rate(settings, value: str) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": value}}


def most_in_any_window(times: list[float], duration: int) -> int:
    """The most of ``times`` in one closed window of ``duration`` seconds (a window that holds
    the most starts at one of the times)."""
    times = sorted(times)
    return max((bisect.bisect_right(times, t + duration) - i for i, t in enumerate(times)), default=0)


# --- the rule --------------------------------------------------------------------------------


def test_the_old_minute_boundary_case_is_refused(store):
    """The reviewer's case: the budget used at second 59 of a minute, more calls at seconds 60
    and 61 (a fixed window lets them through: a new minute). A sliding limit refuses them."""
    assert [hit(store, MINUTE + 59.2 + i / 10).allowed for i in range(3)] == [True, True, True]
    for now in (MINUTE + 60.0, MINUTE + 60.5, MINUTE + 61.9, MINUTE + 118.9):
        assert not hit(store, now).allowed, now
    assert hit(store, MINUTE + 120.0).allowed  # second 59's calls have left the window


@pytest.mark.parametrize(("limit", "duration"), [(3, 1), (5, 60), (7, 3600)], ids=["3/s", "5/min", "7/h"])
def test_no_window_of_the_duration_lets_more_than_the_limit_through(store, limit, duration):
    """Random bursts and pauses, calls a fraction of a second apart up to several windows
    apart: in no window of ``duration`` seconds are more than ``limit`` calls allowed, while a
    client that keeps calling still gets the whole limit once a window has gone by."""
    rng = random.Random(f"{limit}/{duration}")
    now, allowed = float(MINUTE), []
    for _ in range(3000):
        now += rng.choice([0.0, duration / 400, duration / 50, duration / 7, duration * 0.99, duration * 1.7])
        if hit(store, now, limit=limit, duration=duration).allowed:
            allowed.append(now)
    assert most_in_any_window(allowed, duration) <= limit
    assert most_in_any_window(allowed, duration) == limit  # not a limit that just refuses everything
    # Calling without pause: the whole limit again at most a window and a bucket later.
    start = now + 3 * duration
    steps = [start + i * duration / 100 for i in range(1000)]
    hammered = [t for t in steps if hit(store, t, limit=limit, duration=duration).allowed]
    windows = (steps[-1] - start) / duration
    assert len(hammered) >= limit * int(windows / 1.1)
    assert most_in_any_window(hammered, duration) <= limit


def test_refused_calls_spend_no_budget(store):
    """A client hammering at ten calls a second gets its limit back once its allowed calls
    have left the window: its refusals are never counted."""
    allowed = [t for t in (MINUTE + i / 10 for i in range(1300)) if hit(store, t, limit=2).allowed]
    # Two calls at second 0, then at second 61 (second 0's bucket has left), 122 …
    assert allowed == [MINUTE, MINUTE + 0.1, MINUTE + 61, MINUTE + 61.1, MINUTE + 122, MINUTE + 122.1]
    counters = store.get_many([f"{KEY}_{MINUTE + s}" for s in range(131)])
    assert {k: v for k, v in counters.items() if v} == {f"{KEY}_{MINUTE + s}": 2 for s in (0, 61, 122)}


def test_retry_after_is_when_a_call_is_allowed_again(store):
    """Retry-After is the first whole second from the refusal at which a call is allowed:
    one second earlier it is still refused (and a refusal changes nothing, so probing is free)."""
    rng = random.Random(7)
    now = float(MINUTE)
    checked = 0
    while checked < 40:
        now += rng.choice([0.05, 0.4, 3.3, 17.0, 29.5])
        verdict = hit(store, now, limit=4)
        if verdict.allowed:
            continue
        assert 1 <= verdict.retry_after <= 61
        if verdict.retry_after > 1:
            assert not hit(store, now + verdict.retry_after - 1, limit=4).allowed
        assert hit(store, now + verdict.retry_after, limit=4).allowed
        now += verdict.retry_after
        checked += 1


def test_retry_after_counts_the_buckets_that_must_leave(store):
    """Two calls at second 10, two at second 30, limit 4: a refusal at second 50.5 waits for
    second 10's calls to leave (second 71), not for the whole window to empty."""
    for now in (10.2, 10.3, 30.0, 30.1):
        assert hit(store, MINUTE + now, limit=4).allowed
    assert hit(store, MINUTE + 50.5, limit=4).retry_after == 21
    assert hit(store, MINUTE + 70.5, limit=4).retry_after == 1
    assert hit(store, MINUTE + 71.0, limit=4).allowed


def test_parallel_calls_never_exceed_the_limit_and_leave_only_the_allowed_counted():
    """Threads calling at once on the configured cache (Redis when CACHE_URL names it): at
    most the limit allowed, and every refusal took its count back."""
    cache = caches["default"]
    results, lock = [], threading.Lock()
    barrier = threading.Barrier(16, timeout=30)

    def attempt():
        barrier.wait()
        verdict = hit(cache, MINUTE + 5.5, limit=5)
        with lock:
            results.append(verdict.allowed)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    allowed = results.count(True)
    assert len(results) == 16 and allowed <= 5
    assert cache.get(f"{KEY}_{MINUTE + 5}") == allowed
    # The budget left is exactly what the allowed calls did not use.
    later = [hit(cache, MINUTE + 6.0, limit=5).allowed for _ in range(6)]
    assert later.count(True) == 5 - allowed


# --- taking a count back (only refused calls spend the budget: the OpenID Provider's endpoints) ---


def refund(cache, verdict, now: float) -> None:
    sliding_window_refund(cache=cache, verdict=verdict, now=now)


def test_a_refund_takes_back_exactly_the_count_of_its_call(store):
    first, second = hit(store, MINUTE + 10.5), hit(store, MINUTE + 20.5)
    refund(store, first, MINUTE + 30.0)
    assert store.get(f"{KEY}_{MINUTE + 10}") == 0 and store.get(f"{KEY}_{MINUTE + 20}") == 1
    # Limit 3: the call kept and two more.
    assert [hit(store, MINUTE + 31.0).allowed for _ in range(3)] == [True, True, False]


def test_a_refusal_or_a_count_no_window_reads_any_more_is_not_taken_back(store):
    for _ in range(3):
        hit(store, MINUTE + 1.5)
    refused = hit(store, MINUTE + 1.6)
    assert not refused.allowed
    refund(store, refused, MINUTE + 2.0)  # it took its own count back already
    assert store.get(f"{KEY}_{MINUTE + 1}") == 3
    late = hit(store, MINUTE + 200.5)
    assert late.allowed
    # Read by calls up to bucket 260 (and by a host a bucket behind, until second 262).
    refund(store, late, MINUTE + 262.0)
    assert store.get(f"{KEY}_{MINUTE + 200}") == 1
    refund(store, late, MINUTE + 261.9)
    assert store.get(f"{KEY}_{MINUTE + 200}") == 0


def test_calls_that_all_succeed_are_never_refused(store):
    """A relying party's server: a thousand successful calls in a minute, each taking its
    count back when it is answered. Not one refused."""
    for i in range(1000):
        now = MINUTE + i * 0.06
        verdict = hit(store, now)
        assert verdict.allowed, i
        refund(store, verdict, now + 0.01)


@pytest.mark.parametrize(("limit", "duration"), [(3, 1), (5, 60), (7, 3600)], ids=["3/s", "5/min", "7/h"])
def test_with_refunds_no_window_holds_more_than_the_limit_of_kept_calls(store, limit, duration):
    """Random calls, each answered some time later, a success (taken back) or a failure (kept),
    several in flight at once: the calls that keep their count are never more than ``limit``
    in a window, and failures alone still reach the limit."""
    rng = random.Random(f"refund {limit}/{duration}")
    now, kept, in_flight = float(MINUTE), [], []
    for _ in range(4000):
        now += rng.choice([0.0, duration / 400, duration / 50, duration / 7, duration * 0.99, duration * 1.7])
        waiting = []
        for sent, verdict in in_flight:
            if rng.random() < 0.5:
                waiting.append((sent, verdict))
            elif rng.random() < 0.6:
                refund(store, verdict, now)
            else:
                kept.append(sent)
        in_flight = waiting
        verdict = hit(store, now, limit=limit, duration=duration)
        if verdict.allowed:
            in_flight.append((now, verdict))
    kept += [sent for sent, _ in in_flight]
    assert most_in_any_window(kept, duration) == limit


def test_parallel_calls_with_refunds_keep_at_most_the_limit():
    """Threads on the configured cache (Redis when CACHE_URL names it), half of them succeeding
    and taking their count back (which frees budget for later ones): at most the limit keep
    their count, and the counter holds exactly those."""
    cache = caches["default"]
    verdicts, lock = [], threading.Lock()
    barrier = threading.Barrier(16, timeout=30)

    def attempt(succeeds: bool):
        barrier.wait()
        verdict = hit(cache, MINUTE + 5.5, limit=5)
        if verdict.allowed and succeeds:
            refund(cache, verdict, MINUTE + 5.6)
        with lock:
            verdicts.append((verdict.allowed, succeeds))

    threads = [threading.Thread(target=attempt, args=(i % 2 == 0,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(verdicts) == 16
    kept = verdicts.count((True, False))
    assert kept <= 5
    assert cache.get(f"{KEY}_{MINUTE + 5}") == kept
    later = [hit(cache, MINUTE + 6.0, limit=5).allowed for _ in range(6)]
    assert later.count(True) == 5 - kept


def test_a_refund_with_the_cache_down_keeps_the_count_and_raises_nothing(settings, caplog):
    """The call has succeeded: the count stays (a stricter limit for a while), one log line."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    client_refund(verdict=Verdict(allowed=True, bucket=f"{KEY}_{MINUTE}", read_until=float("inf")))
    lines = [r for r in caplog.records if r.name == "accounts.ratelimit"]
    assert len(lines) == 1 and "keeps its count" in lines[0].getMessage()


# --- the pages and the API -----------------------------------------------------------------


def test_over_the_limit_the_login_page_answers_429_and_judges_nothing(client, user, settings):
    rate(settings, "2/min")
    for _ in range(2):
        wrong = client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"})
        assert wrong.status_code == HTTPStatus.OK  # the form again, with its error
    assert User.objects.get(pk=user.pk).failed_password_count == 2
    refused = client.post(login_url("acme"), {"username": "alice", "password": PASSWORD})
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert [t.name for t in refused.templates][0] == "accounts/rate_limited.html"
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 61 and f"wait {wait} second" in refused.content.decode()
    assert "_auth_user_id" not in client.session  # the right password was never looked at
    refused = client.post(login_url("acme"), {"username": "alice", "password": "wrong-again"})
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert User.objects.get(pk=user.pk).failed_password_count == 2  # nothing counted
    # Showing the form is free, and another address has its own budget.
    assert client.get(login_url("acme")).status_code == HTTPStatus.OK
    other = client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"}, REMOTE_ADDR="198.51.100.7")
    assert other.status_code == HTTPStatus.OK


@pytest.mark.parametrize("url", [login_url, choose_url, setup_url, verify_url], ids=["login", "choose", "setup", "verify"])
def test_every_sign_in_page_post_counts(client, tenant, settings, url):
    rate(settings, "1/min")
    assert client.post(url("acme"), {"code": "123456"}).status_code != HTTPStatus.TOO_MANY_REQUESTS
    refused = client.post(url("acme"), {"code": "123456"})
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS and refused["Retry-After"]


def test_the_pages_and_the_api_share_one_budget(client, user, settings):
    rate(settings, "3/min")
    assert client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"}).status_code == HTTPStatus.OK
    assert call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": PASSWORD}).status_code == HTTPStatus.OK
    assert client.post(verify_url("acme"), {"code": "123456"}).status_code == HTTPStatus.FOUND  # no pending sign-in: to login
    refused = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": PASSWORD})
    assert_error(refused, HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert client.post(login_url("acme"), {"username": "alice", "password": PASSWORD}).status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_the_budget_follows_num_proxies_for_pages_and_api_alike(client, user, settings, rf):
    """One client address for both doors: DRF's reading of X-Forwarded-For."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1, "DEFAULT_THROTTLE_RATES": {"auth": "1/min"}}
    behind = {"HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.2", "REMOTE_ADDR": "10.0.0.1"}
    assert client_key(request=rf.post("/", **behind)) == "throttle_auth_10.0.0.2"
    assert client.post(login_url("acme"), {"username": "alice", "password": "x"}, **behind).status_code == HTTPStatus.OK
    refused = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": PASSWORD}, **behind)
    assert_error(refused, HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")
    elsewhere = {**behind, "HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.3"}
    assert call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": PASSWORD}, **elsewhere).status_code == HTTPStatus.OK


# --- the cache down: fail closed, pages and API alike -------------------------------------------


def test_with_the_cache_down_pages_and_api_refuse_with_503_and_judge_nothing(client, user, settings, caplog):
    """A Redis nobody listens on: the limit cannot be counted, so both doors refuse (503,
    Retry-After), one log line each, and no password is checked."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    page = client.post(login_url("acme"), {"username": "alice", "password": "wrong-password"})
    assert page.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert [t.name for t in page.templates][0] == "accounts/rate_limit_unavailable.html"
    assert page["Retry-After"] == "5" and "try again" in page.content.decode().lower()
    api = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": "wrong-password"})
    assert_error(api, HTTPStatus.SERVICE_UNAVAILABLE, "rate_limit_unavailable")
    assert api["Retry-After"] == "5"
    assert User.objects.get(pk=user.pk).failed_password_count == 0
    lines = [r for r in caplog.records if r.name == "accounts.ratelimit"]
    assert len(lines) == 2 and all("rate-limit store unreachable" in r.getMessage() for r in lines)

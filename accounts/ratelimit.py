"""The per-IP limit of the sign-in calls, pages and API alike: one rule, one budget per client
address, on the shared cache (Redis when several processes or hosts serve).

The rate is the ``auth`` throttle rate (``THROTTLE_AUTH_RATE``, "N/s|m|h|d"): at most N
calls in EVERY window of that duration, not only in windows aligned to the clock. A fixed
window (one counter per clock minute) lets 2N through in a moment: N at the end of one
minute, N at the start of the next.

The sliding limit, with Django's public cache API only (``add``, ``incr``, ``decr``,
``get_many``), so it is the same on Redis and on the local-memory cache:

- Time is cut into buckets, ``n = 60`` of them per window (one second each for a per-minute
  rate, a minute for a per-hour rate, a sixtieth of a second for a per-second rate).
- A call first counts itself in its own bucket ``b`` (``incr``; ``add`` opens a bucket),
  then reads buckets ``b - n`` … ``b + 1`` (one ``get_many``) and is allowed iff their sum is
  at most N. A refused call takes its count back (``decr``): refusals spend no budget, so a
  client that hammers is held to the rate instead of being shut out for good.

Why no window of ``duration`` seconds lets more than N through: suppose N + 1 allowed calls
fall in one window, and take the one among them, R, whose increment came last. Every other
one counted itself before R read the sums, and allowed calls never take their count back.
Their buckets lie within ``n`` buckets before R's (they share a window of ``n`` buckets'
length) and at most one bucket after it (the ``b + 1`` bucket covers a call that read the
clock just after R but counted just before it, and hosts' clocks that differ by less than a
bucket). So R read at least N + 1: it was refused. Contradiction. The only error is on the
safe side: a refused call's count is visible to others until it is taken back, and a bucket
counts whole, so a call may be refused a little early, never let through.

Where only calls that fail spend the budget (the OpenID Provider's token, revocation and
userinfo endpoints: a relying party's server calls them for all its users from one address),
a call is still counted before anything is judged, and one that then succeeds takes its count
back (``client_refund``). The proof holds for the calls that keep their count: read "allowed
calls that keep their count" above, and R still read the N others, counted before it and
never taken back, so at most N of them fall in any window. A call that is later taken back
only made others' sums larger while it was in flight: again an early refusal, never one more
let through. Checking first and counting only the failures would not do: parallel calls would
all read the same sum and all be judged.
"""
import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.shortcuts import render
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

SCOPE = "auth"
# Seconds a client is asked to wait when the limit cannot be counted (a Redis failover or
# restart is over within seconds).
UNAVAILABLE_RETRY_AFTER = 5
BUCKETS = 60  # per window: each call reads BUCKETS + 2 counters
_DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RateLimitUnavailable(Exception):
    """The cache holding the counters cannot be reached: the limit cannot be counted, so the
    call is refused (fail closed; docs/security.md, "Redis down")."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until a call would be allowed again (refusals only)
    # Allowed calls only: the counter that holds this call's count, and the moment after which
    # no window reads it any more (``sliding_window_refund``).
    bucket: str = ""
    read_until: float = 0.0


def parse_rate(*, rate: str) -> tuple[int, int]:
    """``"60/min"`` → ``(60, 60)``: DRF's notation (the first letter of the unit counts)."""
    count, unit = rate.split("/")
    return int(count), _DURATIONS[unit[0]]


def _count(*, cache, key: str, ttl: int) -> None:
    """Add one to ``key``, opening it with ``ttl`` if it does not exist (``add`` only succeeds
    for one caller; the others find it and increment)."""
    for _ in range(3):
        try:
            cache.incr(key)
            return
        except ValueError:  # no such bucket yet
            if cache.add(key, 1, ttl):
                return
    # The key keeps vanishing between add and incr: the store is evicting as fast as we write.
    raise RateLimitUnavailable("the counter could not be written")


def sliding_window_hit(*, cache, key: str, limit: int, duration: int, now: float) -> Verdict:
    """Count one call of the client ``key`` at time ``now`` against ``limit`` calls per
    ``duration`` seconds (the rule and its proof: this module's docstring)."""
    n = BUCKETS
    width = duration / n  # seconds
    bucket = int(now * n // duration)
    # A bucket is read until n buckets after it, and written a little after its own end by a
    # host whose clock is behind: it must outlive both.
    ttl = math.ceil((n + 2) * width) + 1
    counter = f"{key}_{bucket}"
    _count(cache=cache, key=counter, ttl=ttl)
    indexes = range(bucket - n, bucket + 2)
    found = cache.get_many([f"{key}_{i}" for i in indexes])
    counts = [int(found.get(f"{key}_{i}", 0)) for i in indexes]
    if sum(counts) <= limit:
        # Read by calls up to n buckets later, and by a host whose clock is a bucket behind.
        return Verdict(allowed=True, bucket=counter, read_until=(bucket + n + 2) * width)
    _uncount(cache=cache, bucket=counter)
    # Seconds until enough of the oldest counted buckets leave the window for one more call.
    remaining = sum(counts) - 1
    ready_at = now
    for index, count in zip(indexes, counts):
        if remaining < limit:
            break
        remaining -= count
        ready_at = (index + n + 1) * width
    return Verdict(allowed=False, retry_after=max(math.ceil(ready_at - now), 1))


def sliding_window_refund(*, cache, verdict: Verdict, now: float) -> None:
    """Take back the count of a call that ``sliding_window_hit`` allowed, from the bucket it was
    counted in. A refused call has nothing to take back (it already did), and a count that no
    window reads any more needs none: its bucket may have expired, and ``decr`` must not race
    the expiry and leave a counter without one."""
    if now < verdict.read_until:
        _uncount(cache=cache, bucket=verdict.bucket)


def _uncount(*, cache, bucket: str) -> None:
    """Take one call's count back from ``bucket``."""
    try:
        cache.decr(bucket)
    except ValueError:  # the bucket is gone (evicted): nothing left to take back
        pass


def client_key(*, request) -> str:
    """The client's budget, the same for the pages and the API: DRF's client address
    (``REMOTE_ADDR``, or ``X-Forwarded-For`` as ``NUM_PROXIES`` says); it only reads
    ``request.META``, so a plain Django request works too."""
    return f"throttle_{SCOPE}_{BaseThrottle().get_ident(request)}"


def client_hit(*, request) -> Verdict:
    """Count one sign-in call of this request's client at the rate of the moment (settings
    are read now, so overrides apply). Raises ``RateLimitUnavailable`` (and logs one line)
    when the cache cannot be reached."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(SCOPE)
    if rate is None:
        return Verdict(allowed=True)
    limit, duration = parse_rate(rate=rate)
    try:
        return sliding_window_hit(cache=caches["default"], key=client_key(request=request), limit=limit,
                                  duration=duration, now=time.time())
    except (RedisError, OSError, RateLimitUnavailable) as exc:
        logger.error("rate-limit store unreachable (%s): refusing sign-in calls until it is back", type(exc).__name__)
        raise RateLimitUnavailable() from None


def client_refund(*, verdict: Verdict) -> None:
    """Take back the count of a call that ``client_hit`` allowed and that then succeeded, where
    only calls that fail spend the budget (the rule: this module's docstring). When the cache
    cannot be reached the count stays, which only makes the limit stricter for a while: the
    call has succeeded and is not turned into an error."""
    try:
        sliding_window_refund(cache=caches["default"], verdict=verdict, now=time.time())
    except (RedisError, OSError) as exc:
        logger.warning("rate-limit store unreachable (%s): a successful call keeps its count", type(exc).__name__)


class RateLimitedPostMixin:
    """For the sign-in pages (before ``TenantMixin`` and the page's own mixins): every POST
    counts against the client's per-IP budget, and over it nothing behind runs (no password
    or code is judged, nothing is counted on the user). GETs only show forms and are free."""

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        try:
            verdict = client_hit(request=request)
        except RateLimitUnavailable:
            response = render(request, "accounts/rate_limit_unavailable.html", {"tenant": self.tenant}, status=503)
            response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
            return response
        if not verdict.allowed:
            response = render(request, "accounts/rate_limited.html", {"tenant": self.tenant, "retry_after": verdict.retry_after},
                              status=429)
            response["Retry-After"] = str(verdict.retry_after)
            return response
        return super().dispatch(request, *args, **kwargs)

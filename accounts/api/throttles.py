"""Per-IP rate limits on the sign-in endpoints, on the shared cache (Redis when several
processes serve), on top of the per-user lockout of ``accounts.lockout``.

A fixed-window counter: one key per client address and window, counted with one atomic
increment. On Redis that is ONE command (a short Lua script: ``INCR``, and ``EXPIRE`` for a
new key), where DRF's sliding log reads and rewrites the whole history (two round trips and
a list per call). Every host and process counts into the same key.
"""
import logging
import math
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class RateLimitUnavailable(APIException):
    """The rate-limit store (the cache: Redis) cannot be reached. Fail closed: refuse rather
    than let calls through uncounted (docs/security.md, "Redis down")."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Signing in is briefly unavailable. Try again in a few seconds."
    default_code = "rate_limit_unavailable"
    wait = 5  # seconds, sent as Retry-After by the exception handler


# Increment, and give a new key the window's expiry, atomically (a script runs alone on the
# server): no key can be left without an expiry, and it is one command, one round trip.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_counters: dict = {}


def _redis_counter(cache: RedisCache):
    """``_COUNT``, registered on a client of the cache's own connection pool. Django builds a
    new ``redis.Redis`` (and its table of ~200 response callbacks) for every cache call; one
    client per pool is enough."""
    pool = cache._cache._get_connection_pool(write=True)
    script = _counters.get(id(pool))
    if script is None or script.registered_client.connection_pool is not pool:
        script = _counters[id(pool)] = cache._cache._client(connection_pool=pool).register_script(_COUNT)
    return script


def _redis_count(cache: RedisCache, key: str, window: int) -> int:
    """Count one call in ``key`` (created with the window's expiry) in one round trip."""
    return int(_redis_counter(cache)(keys=[cache.make_and_validate_key(key)], args=[window]))


def _cache_count(cache, key: str, window: int) -> int:
    """The same with any other Django cache (one process: locmem in tests and `make run`)."""
    cache.add(key, 0, window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls: this call opens a new window
        cache.set(key, 1, window)
        return 1


class AuthRateThrottle(SimpleRateThrottle):
    """Scope ``auth``: every ``auth/…`` call from one client address shares one budget."""

    scope = "auth"

    def get_rate(self):
        # Read at request time (DRF's class attribute is captured at import), so
        # settings and test overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = f"{self.get_cache_key(request, view)}_{window}"
        cache = caches["default"]
        try:
            if isinstance(cache, RedisCache):
                count = _redis_count(cache, key, self.duration)
            else:
                count = _cache_count(cache, key, self.duration)
        except (RedisError, OSError) as exc:
            logger.error("rate-limit store unreachable (%s): refusing sign-in API calls until it is back", type(exc).__name__)
            raise RateLimitUnavailable() from None
        return count <= self.num_requests

    def wait(self):
        """Seconds until this window ends and the budget is whole again."""
        return max(math.ceil(self.window_ends - self.now), 1)

    def timer(self):
        return time.time()

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

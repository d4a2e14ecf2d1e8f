"""Per-IP rate limits on the sign-in endpoints, on the shared cache (Redis when several
processes serve), on top of the per-user lockout of ``accounts.lockout``."""
import logging

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


class AuthRateThrottle(SimpleRateThrottle):
    """Scope ``auth``: every ``auth/…`` call from one client address shares one budget."""

    scope = "auth"

    def get_rate(self):
        # Read at request time (DRF's class attribute is captured at import), so
        # settings and test overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.error("rate-limit store unreachable (%s): refusing sign-in API calls until it is back", type(exc).__name__)
            raise RateLimitUnavailable() from None

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

"""The API's door onto the per-IP limit of the sign-in calls: a DRF throttle that asks
``accounts.ratelimit``, which owns the rule (a sliding limit on the shared cache) and the
budget, one per client address for the pages and the API together."""
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.throttling import BaseThrottle

from accounts import ratelimit
from django.utils.translation import gettext_lazy as _


class RateLimitUnavailable(APIException):
    """The rate-limit store (the cache: Redis) cannot be reached. Fail closed: refuse rather
    than let calls through uncounted (docs/security.md, "Redis down")."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Signing in is briefly unavailable. Try again in a few seconds.")
    default_code = "rate_limit_unavailable"
    wait = ratelimit.UNAVAILABLE_RETRY_AFTER  # sent as Retry-After by the exception handler


class AuthRateThrottle(BaseThrottle):
    """Scope ``auth``: every sign-in call from one client address spends the budget its
    sign-in page POSTs spend too (``accounts.ratelimit.client_hit``)."""

    scope = ratelimit.SCOPE

    def allow_request(self, request, view):
        try:
            self.verdict = ratelimit.client_hit(request=request)
        except ratelimit.RateLimitUnavailable:
            raise RateLimitUnavailable() from None
        return self.verdict.allowed

    def wait(self):
        """Seconds until the oldest counted calls leave the window (DRF sends Retry-After)."""
        return self.verdict.retry_after

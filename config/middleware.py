"""Middleware of our own: the request id and the access line (``RequestIdMiddleware``), the
operations probes (``ProbesMiddleware``), and the response headers Django 5.2 does not set by
itself: a Content-Security-Policy and no-store (``SecurityHeadersMiddleware``)."""
import logging
import re
import time
import uuid

from django.conf import settings
from django.core.signals import request_finished

from config import views
from config.logging import NO_REQUEST, request_id

access_log = logging.getLogger("gatehouse.access")
# An incoming X-Request-ID is taken only if it looks like an id: no spaces, quotes or line breaks
# can reach a log line through it.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PROBES = {"/healthz": views.healthz, "/readyz": views.readyz, "/metrics": views.metrics}


def _forget_request_id(**kwargs) -> None:
    request_id.set(NO_REQUEST)


class RequestIdMiddleware:
    """Gives each request an id, sent back as ``X-Request-ID`` and stamped on every log line
    written while the request is served (``config.logging``), and writes one access line per
    request: method, path (never the query string, which may hold a token), status, duration.

    The proxy's ``X-Request-ID`` is used only with ``TRUST_X_REQUEST_ID=true`` (the proxy sets
    or overwrites it); otherwise a client could choose the id of its own log lines. The id
    stays set until the response is closed (``request_finished``), so Django's own line about
    an error answer, written after the middleware returned, carries it too."""

    def __init__(self, get_response):
        self.get_response = get_response
        request_finished.connect(_forget_request_id, dispatch_uid="gatehouse_forget_request_id")

    def __call__(self, request):
        started = time.monotonic()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "") if settings.TRUST_X_REQUEST_ID else ""
        rid = incoming if _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        request_id.set(rid)
        request.request_id = rid
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        # Probes come every few seconds: their lines only at DEBUG.
        level = logging.DEBUG if request.path in _PROBES else logging.INFO
        access_log.log(level, "%s %s %s %sms", request.method, request.path, response.status_code, duration_ms,
                       extra={"method": request.method, "path": request.path, "status": response.status_code,
                              "duration_ms": duration_ms})
        return response


class ProbesMiddleware:
    """``/healthz``, ``/readyz`` and ``/metrics`` (``config.views``), answered before the host
    check, the HTTPS redirect, sessions and CSRF: a load balancer or Prometheus reaching a
    process by its address over plain HTTP gets the answer, and a probe touches no session."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = _PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)

# Pages that ship third-party UI (Swagger UI, the Django admin) set inline style attributes.
_INLINE_STYLE_PREFIXES = ("/api/docs/", "/admin/")


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if request.path.startswith(_INLINE_STYLE_PREFIXES):
            policy = policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
        response.headers.setdefault("Content-Security-Policy", policy)
        if not request.path.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/" + settings.STATIC_URL):
            # Sign-in pages, codes and tokens must never sit in a shared or browser cache.
            response.headers["Cache-Control"] = "no-store"
        return response

"""Error pages: JSON under the API, plain pages elsewhere. Never a trace. And the operations
probes: ``/healthz``, ``/readyz``, ``/metrics`` (mounted by ``config.middleware.ProbesMiddleware``)."""
import hmac
import logging
import os
import sys

import prometheus_client
from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import multiprocess
from redis.exceptions import RedisError

from accounts.metrics import scrape_registry
from django.template import loader
from django.views.defaults import bad_request, page_not_found, server_error
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

# How long a client is asked to wait after an outage answer: a database restart or a Redis
# failover is over within seconds.
RETRY_AFTER_SECONDS = 5

# The database or the cache cannot be reached or has dropped the connection. Every
# OperationalError counts, not only "connection refused": on PostgreSQL psycopg raises it
# only for the server's state (connection lost, shutdown, out of resources, a serialization
# failure, a timeout), never for a bad statement (that is a ProgrammingError); SQLite also
# raises it for "no such table", a deployment error, which then answers 503 too, a harmless
# retry, while its log line still names the exception at ERROR level, as a 500 would.
_OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
logger = logging.getLogger(__name__)


def _outage_behind(exc: BaseException | None) -> bool:
    """The exception, or one it was raised from or while handling, is an outage: Django's
    session middleware turns a failed session UPDATE into ``SessionInterrupted`` (a 400)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _OUTAGES):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _is_api(request) -> bool:
    parts = request.path.split("/")
    return request.path.startswith("/api/") or (len(parts) > 3 and parts[1] == "tenant" and parts[3] == "v2")


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": "not_found", "detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def handler500(request):
    """Django's answer to any exception a view or a middleware let through (sessions and auth
    included). It is called inside Django's ``except`` block, so ``sys.exc_info()`` holds the
    exception: an outage of the database or the cache is a 503 the client may retry, not a bug."""
    if _outage_behind(sys.exc_info()[1]):
        return service_unavailable(api=_is_api(request))
    if _is_api(request):
        return JsonResponse({"error": "server_error", "detail": "Something went wrong on our side."}, status=500)
    return server_error(request)


def service_unavailable(*, api: bool) -> HttpResponse:
    """503 with ``Retry-After``: JSON under the API, else the plain page, rendered without the
    request so no context processor reaches for the session, the user or the database."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if api:
        body = {"error": "service_unavailable", "detail": "The service is briefly unavailable. Try again shortly."}
        return JsonResponse(body, status=503, headers=headers)
    return HttpResponse(loader.render_to_string("503.html"), status=503, headers=headers)


def handler400(request, exception=None):
    if _outage_behind(exception):
        return service_unavailable(api=_is_api(request))
    if _is_api(request):
        return JsonResponse({"error": "bad_request", "detail": "The request could not be understood."}, status=400)
    return bad_request(request, exception)


# --- operations probes ------------------------------------------------------------------------

_NO_STORE = {"Cache-Control": "no-store"}


def healthz(request) -> JsonResponse:
    """Liveness: the process serves requests. Touches neither the database nor the cache, so
    an outage of either never gets a healthy process restarted."""
    return JsonResponse({"status": "ok"}, headers=_NO_STORE)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except DatabaseError as exc:  # includes the connect, bounded by connect_timeout (settings)
        logger.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return False


def _cache_answers() -> bool:
    try:
        caches["default"].get("gatehouse_readyz")
        return True
    except (RedisError, OSError) as exc:
        logger.warning("readiness: the cache does not answer (%s)", type(exc).__name__)
        return False


def readyz(request) -> JsonResponse:
    """Readiness, for the load balancer: 200 when the database and the cache both answer,
    else 503 naming each that failed, with ``Retry-After``. Every dependency is asked on each
    call (no cached verdict), each with a short timeout."""
    checks = {"database": _database_answers(), "cache": _cache_answers()}
    body = {name: "ok" if answered else "unavailable" for name, answered in checks.items()}
    if all(checks.values()):
        return JsonResponse({"status": "ok", "checks": body}, headers=_NO_STORE)
    failed = [name for name, answered in checks.items() if not answered]
    return JsonResponse({"status": "unavailable", "failed": failed, "checks": body}, status=503,
                        headers={**_NO_STORE, "Retry-After": str(RETRY_AFTER_SECONDS)})


def _bearer(request) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics(request) -> HttpResponse:
    """Prometheus text: django-prometheus's request metrics and Gatehouse's counters, summed
    over every worker process when ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn.conf.py),
    plus what is read at scrape time (``accounts.metrics.scrape_registry``). Only with
    ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time); 404 when no
    ``METRICS_TOKEN`` is set."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return HttpResponse("Not found.", status=404, content_type="text/plain", headers=_NO_STORE)
    if not hmac.compare_digest(_bearer(request).encode(), expected.encode()):
        return HttpResponse("A metrics token is required.", status=401, content_type="text/plain",
                            headers={**_NO_STORE, "WWW-Authenticate": 'Bearer realm="metrics"'})
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    text = prometheus_client.generate_latest(registry) + prometheus_client.generate_latest(scrape_registry())
    return HttpResponse(text, content_type=prometheus_client.CONTENT_TYPE_LATEST, headers=_NO_STORE)

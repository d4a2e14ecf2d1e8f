"""Error pages: JSON under the API, plain pages elsewhere. Never a trace."""
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
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

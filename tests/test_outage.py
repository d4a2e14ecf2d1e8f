"""A database or cache outage answers 503 with ``Retry-After``, never 500: JSON
``service_unavailable`` under the API, the plain "try again shortly" page elsewhere, whether
the failure comes from a view or from a middleware (sessions, auth). A real bug stays a 500.

The database fails through Django's own instrumentation hook (``connection.execute_wrapper``),
the cache through a Redis address where nothing listens."""
from contextlib import contextmanager
from http import HTTPStatus

import pytest
from django.db import OperationalError, connection
from django.test import Client
from redis.backoff import NoBackoff
from redis.retry import Retry

from accounts.models import MfaMethod
from config.logging import OneLineFormatter
from tests.accounts.flows import account_url, login_url, password_step
from tests.api.helpers import access_token, assert_error, call, v2
from tests.conftest import PASSWORD, confirm_totp, free_port

SECRET_IN_MESSAGE = "password=hunter2"
TRACE_MARKERS = (SECRET_IN_MESSAGE, "Traceback", "OperationalError", "ConnectionError", "django.db", "redis.exceptions", "site-packages")


@pytest.fixture
def client():
    """Django's test client answering as production does: an uncaught exception becomes the
    error handler's response instead of being raised into the test."""
    return Client(raise_request_exception=False)


@contextmanager
def database_down(*, statements_starting: str = ""):
    """Every SQL statement (or only those starting with ``statements_starting``) fails as it
    does when PostgreSQL restarts under a live connection."""

    def refuse(execute, sql, params, many, context):
        if sql.lstrip().startswith(statements_starting):
            raise OperationalError(f"server closed the connection unexpectedly ({SECRET_IN_MESSAGE})")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield


def assert_plain_503_page(response) -> None:
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE, response.content[:300]
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Try again shortly" in page
    for marker in TRACE_MARKERS:
        assert marker not in page, marker


def assert_api_503(response) -> None:
    body = assert_error(response, HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable")
    assert int(response["Retry-After"]) > 0
    for marker in TRACE_MARKERS:
        assert marker not in body["detail"], marker


# --- the database, in a view ------------------------------------------------------------------

def test_a_page_answers_the_plain_503_page(client, tenant):
    with database_down():
        assert_plain_503_page(client.get(login_url(tenant.id)))


def test_a_page_post_answers_the_plain_503_page(client, user):
    with database_down():
        assert_plain_503_page(password_step(client, user.tenant_id, user.username))


def test_an_api_sign_in_answers_json_503(client, user):
    with database_down():
        assert_api_503(call(client, "post", v2(user.tenant_id, "auth/login"), {"username": user.username, "password": PASSWORD}))


def test_an_authenticated_api_call_answers_json_503(client, user_factory):
    token = access_token(user_factory("root", is_admin=True))
    with database_down():
        assert_api_503(call(client, "get", v2("acme", "Settings"), token=token))


def test_the_service_answers_again_once_the_database_is_back(client, user):
    with database_down():
        assert_plain_503_page(client.get(login_url(user.tenant_id)))
    assert client.get(login_url(user.tenant_id)).status_code == HTTPStatus.OK


def test_the_log_says_it_in_one_line_without_the_exception_message(client, tenant, caplog, settings):
    """The production formatter (config.logging) names the exception and where it was raised;
    its message, which may hold a host, a user or worse, is left out."""
    formatter = OneLineFormatter(settings.LOGGING["formatters"]["plain"]["format"])
    with database_down():
        client.get(login_url(tenant.id))
    lines = [formatter.format(r) for r in caplog.records if r.name == "django.request"]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "Service Unavailable: /tenant/acme/login/ [OperationalError at " in lines[0]
    assert SECRET_IN_MESSAGE not in lines[0] and "Traceback" not in lines[0]


# --- the database, in a middleware --------------------------------------------------------------

def test_a_session_that_cannot_be_loaded_answers_the_plain_503_page(client, user):
    """Only the session table fails: its row is read through SessionMiddleware's lazy session."""
    client.force_login(user)
    with database_down(statements_starting='SELECT "django_session"'):
        assert_plain_503_page(client.get(account_url(user.tenant_id)))


def test_a_session_that_cannot_be_saved_answers_the_plain_503_page(client, user_factory):
    """Only the UPDATE of a session row fails: Django runs it in SessionMiddleware's
    process_response, after the view has answered (the password step's new session row is an
    INSERT, made in the view; the pending sign-in written into it is saved by the middleware).
    Django turns that failure into ``SessionInterrupted``, a 400, unless the handler looks behind it."""
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    assert password_step(Client(), tina.tenant_id, "tina").status_code == HTTPStatus.FOUND  # the same step, database up
    with database_down(statements_starting='UPDATE "django_session"'):
        assert_plain_503_page(password_step(client, tina.tenant_id, "tina"))


# --- the cache ------------------------------------------------------------------------------

@pytest.fixture
def sessions_in_a_dead_redis(settings):
    """Sessions in the cache (a documented Django set-up), on a Redis where nothing listens;
    no retries, so the failure is immediate."""
    settings.CACHES = {
        **settings.CACHES,
        "sessions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"retry": Retry(NoBackoff(), 0)},
        },
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.SESSION_CACHE_ALIAS = "sessions"


def test_a_cache_that_cannot_be_reached_answers_the_plain_503_page(client, user_factory, sessions_in_a_dead_redis):
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    assert_plain_503_page(password_step(client, tina.tenant_id, "tina"))


# --- a bug is still a bug --------------------------------------------------------------------

def test_another_error_is_still_a_500(client, user_factory):
    token = access_token(user_factory("root", is_admin=True))

    def broken(execute, sql, params, many, context):
        raise ZeroDivisionError("a bug, not an outage")

    with connection.execute_wrapper(broken):
        response = call(client, "get", v2("acme", "Settings"), token=token)
    assert_error(response, HTTPStatus.INTERNAL_SERVER_ERROR, "server_error")
    assert "Retry-After" not in response

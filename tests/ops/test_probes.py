"""/healthz, /readyz and /metrics (config.views, mounted by config.middleware.ProbesMiddleware)."""
from http import HTTPStatus

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from accounts.models import MfaMethod
from tests.api.helpers import call, code_now, v2
from tests.conftest import PASSWORD, confirm_totp, free_port
from tests.test_outage import database_down

TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


@pytest.fixture
def dead_cache(settings):
    """The default cache is a Redis where nothing listens."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": f"redis://127.0.0.1:{free_port()}/0", "OPTIONS": {"retry": Retry(NoBackoff(), 0)}},
    }


# --- /healthz ---------------------------------------------------------------------------------

def test_healthz_answers_ok_and_reads_no_database(client, db, django_assert_num_queries):
    with database_down(), django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_probes_answer_a_balancer_probing_by_address_over_plain_http(client, db, settings):
    """A Host not in ALLOWED_HOSTS and the HTTPS redirect on: the probes answer all the same;
    every other path is still refused."""
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/readyz"):
        assert client.get(path, HTTP_HOST="10.1.2.3:8000").status_code == HTTPStatus.OK, path
    assert client.get("/login/", HTTP_HOST="10.1.2.3:8000").status_code == HTTPStatus.BAD_REQUEST
    assert client.get("/login/").status_code == HTTPStatus.MOVED_PERMANENTLY


def test_probes_are_never_rate_limited(client, db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "1/min"}}
    for _ in range(5):
        assert client.get("/readyz").status_code == HTTPStatus.OK
        assert client.get("/healthz").status_code == HTTPStatus.OK


# --- /readyz ----------------------------------------------------------------------------------

def test_readyz_answers_ok_when_the_database_and_the_cache_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def test_readyz_names_the_database_when_it_does_not_answer(client, db, caplog):
    with database_down():
        response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert int(response["Retry-After"]) > 0
    assert response.json() == {"status": "unavailable", "failed": ["database"], "checks": {"database": "unavailable", "cache": "ok"}}
    assert [r.getMessage() for r in caplog.records if r.name == "config.views"] == ["readiness: the database does not answer (OperationalError)"]


def test_readyz_names_the_cache_when_it_does_not_answer(client, db, dead_cache):
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["failed"] == ["cache"] and response.json()["checks"]["database"] == "ok"


def test_readyz_names_both(client, db, dead_cache):
    with database_down():
        response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE and response.json()["failed"] == ["database", "cache"]


# --- /metrics ---------------------------------------------------------------------------------

def test_metrics_is_not_there_without_a_token_configured(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"])
def test_metrics_refuses_without_the_right_token(client, db, settings, header):
    settings.METRICS_TOKEN = TOKEN
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == HTTPStatus.UNAUTHORIZED and response["WWW-Authenticate"].startswith("Bearer")
    assert b"gatehouse_" not in response.content


def test_metrics_compares_the_token_in_constant_time(client, db, settings, monkeypatch):
    import hmac

    from config import views

    seen, real = [], hmac.compare_digest
    monkeypatch.setattr(views.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    settings.METRICS_TOKEN = TOKEN
    client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert seen == [(b"nope", TOKEN.encode())]


def scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == HTTPStatus.OK, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_answers_prometheus_text_with_django_and_gatehouse_metrics(client, db, settings):
    settings.METRICS_TOKEN = TOKEN
    client.get("/login/")
    text = scrape(client)
    assert "django_http_requests_latency_seconds_by_view_method" in text
    assert "# TYPE gatehouse_codes_sent_total counter" in text
    assert 'gatehouse_notices_queued{state="ready"} 0.0' in text


def test_the_notices_queue_depth_is_read_at_scrape(client, user, settings):
    from accounts.notifications import notify_user

    settings.METRICS_TOKEN = TOKEN
    notify_user(user=user, kind="password_changed")
    notify_user(user=user, kind="mfa_reset")
    assert 'gatehouse_notices_queued{state="ready"} 2.0' in scrape(client)


def test_counters_move_after_a_sign_in_a_failed_code_and_a_lockout(client, tenant_factory, user_factory, settings):
    """The API: a password sign-in, wrong codes to the lockout, and a sign-in with the code."""
    settings.METRICS_TOKEN = TOKEN
    tenant = tenant_factory("locks", "Locks", mfa_max_attempts=2, password_max_attempts=2)
    tina = user_factory("tina", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    nora = user_factory("nora", tenant=tenant)

    def counters():
        return {
            "pw_ok": value("gatehouse_sign_in_steps_total", method="password", result="success"),
            "pw_bad": value("gatehouse_sign_in_steps_total", method="password", result="failure"),
            "totp_ok": value("gatehouse_sign_in_steps_total", method="totp", result="success"),
            "totp_bad": value("gatehouse_sign_in_steps_total", method="totp", result="failure"),
            "totp_locked": value("gatehouse_sign_in_steps_total", method="totp", result="locked"),
            "lock_code": value("gatehouse_lockouts_total", counter="code"),
            "lock_pw": value("gatehouse_lockouts_total", counter="password"),
        }

    before = counters()
    login = v2(tenant.id, "auth/login")
    assert call(client, "post", login, {"username": "nora", "password": PASSWORD}).status_code == HTTPStatus.OK
    mfa_token = call(client, "post", login, {"username": "tina", "password": PASSWORD}).json()["mfaToken"]
    verify = v2(tenant.id, "auth/mfa/verify")
    assert call(client, "post", verify, {"mfaToken": mfa_token, "code": "000000"}).status_code == HTTPStatus.UNAUTHORIZED
    assert call(client, "post", verify, {"mfaToken": mfa_token, "code": "000001"}).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert call(client, "post", verify, {"mfaToken": mfa_token, "code": code_now()}).status_code == HTTPStatus.TOO_MANY_REQUESTS
    for _ in range(2):
        call(client, "post", login, {"username": "nora", "password": "wrong-password"})
    after = counters()
    assert {k: after[k] - before[k] for k in before} == {
        "pw_ok": 2, "pw_bad": 2, "totp_ok": 0, "totp_bad": 2, "totp_locked": 1, "lock_code": 1, "lock_pw": 1,
    }
    text = scrape(client)
    assert 'gatehouse_lockouts_total{counter="code"}' in text and 'gatehouse_sign_in_steps_total{method="totp",result="failure"}' in text


def test_a_completed_sign_in_is_counted_once_committed(client, totp_user, django_capture_on_commit_callbacks):
    before = value("gatehouse_sign_ins_total", channel="api")
    ok_before = value("gatehouse_sign_in_steps_total", method="totp", result="success")
    with django_capture_on_commit_callbacks(execute=True):
        mfa_token = call(client, "post", v2(totp_user.tenant_id, "auth/login"), {"username": "tina", "password": PASSWORD}).json()["mfaToken"]
        done = call(client, "post", v2(totp_user.tenant_id, "auth/mfa/verify"), {"mfaToken": mfa_token, "code": code_now()})
    assert done.status_code == HTTPStatus.OK
    assert value("gatehouse_sign_ins_total", channel="api") - before == 1
    assert value("gatehouse_sign_in_steps_total", method="totp", result="success") - ok_before == 1


def test_refreshes_are_counted_by_result(client, user):
    tokens = call(client, "post", v2(user.tenant_id, "auth/login"), {"username": user.username, "password": PASSWORD}).json()
    before = {r: value("gatehouse_token_refreshes_total", result=r) for r in ("success", "invalid", "reused")}
    refresh = v2(user.tenant_id, "auth/token/refresh")
    assert call(client, "post", refresh, {"refreshToken": tokens["refreshToken"]}).status_code == HTTPStatus.OK
    assert call(client, "post", refresh, {"refreshToken": tokens["refreshToken"]}).status_code == HTTPStatus.UNAUTHORIZED
    assert call(client, "post", refresh, {"refreshToken": "not-a-token"}).status_code == HTTPStatus.UNAUTHORIZED
    assert {r: value("gatehouse_token_refreshes_total", result=r) - before[r] for r in before} == {"success": 1, "invalid": 1, "reused": 1}


def test_codes_sent_and_mail_failures_are_counted(client, email_user, settings):
    login = call(client, "post", v2(email_user.tenant_id, "auth/login"), {"username": "emma", "password": PASSWORD}).json()
    send = v2(email_user.tenant_id, "auth/mfa/email/send")
    sent, failed = value("gatehouse_codes_sent_total"), value("gatehouse_mail_failures_total", kind="code")
    assert call(client, "post", send, {"mfaToken": login["mfaToken"]}).status_code == HTTPStatus.ACCEPTED
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    email_user.tenant.email_resend_seconds = 0
    email_user.tenant.save()
    assert call(client, "post", send, {"mfaToken": login["mfaToken"]}).status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert value("gatehouse_codes_sent_total") - sent == 1
    assert value("gatehouse_mail_failures_total", kind="code") - failed == 1

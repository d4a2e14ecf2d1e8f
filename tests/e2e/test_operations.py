"""Operations against running gunicorn hosts: readiness follows PostgreSQL, the metrics'
counters move with sign-ins, failed codes and lockouts (summed over both workers), /metrics
refuses without its token, JSON log lines carry the request id, and a server without
EMAIL_URL outside DEBUG refuses to start in one line."""
import json
import subprocess
import time
from http import HTTPStatus

import httpx
import pytest

from tests.e2e.conftest import BIN, METRICS_TOKEN, PASSWORD, ROOT, Api, error_of

pytestmark = pytest.mark.e2e


def get(url: str, **kwargs) -> httpx.Response:
    """A fresh connection each time: consecutive calls land on either worker."""
    return httpx.get(url, timeout=30, **kwargs)


def test_readiness_follows_postgresql_and_liveness_does_not(cluster_stack):
    """Our own cluster stops: /readyz answers 503 naming the database on both hosts, quickly
    and with Retry-After, while /healthz stays 200; started again: 200 again, by itself."""
    cluster = cluster_stack.cluster
    hosts = cluster_stack.servers
    for host in hosts:
        answer = get(f"{host.url}/readyz")
        assert answer.status_code == HTTPStatus.OK and answer.json()["checks"] == {"database": "ok", "cache": "ok"}
    cluster.ctl("stop")
    try:
        for host in hosts:
            for _ in range(4):  # each worker: one with a live connection, one without
                started = time.monotonic()
                answer = get(f"{host.url}/readyz")
                assert time.monotonic() - started < 8
                assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE, answer.text
                assert answer.json()["failed"] == ["database"] and answer.json()["checks"]["cache"] == "ok"
                assert int(answer.headers["retry-after"]) > 0
                health = get(f"{host.url}/healthz")
                assert health.status_code == HTTPStatus.OK and health.json() == {"status": "ok"}
    finally:
        cluster.ctl("start")
        cluster.wait_ready()
    deadline = time.monotonic() + 30
    for host in hosts:
        ready = 0
        while ready < 4 and time.monotonic() < deadline:
            ready = ready + 1 if get(f"{host.url}/readyz").status_code == HTTPStatus.OK else 0
            time.sleep(0.1)
        assert ready == 4, f"{host.name} did not become ready again"
    for host in hosts:
        assert "Traceback" not in host.log_text()


def test_metrics_need_the_token(main_stack):
    url = f"{main_stack.server.url}/metrics"
    assert get(url).status_code == HTTPStatus.UNAUTHORIZED
    assert get(url, headers={"Authorization": "Bearer wrong"}).status_code == HTTPStatus.UNAUTHORIZED
    assert get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == HTTPStatus.OK
    # A server without METRICS_TOKEN: the cluster's hosts.


def test_metrics_are_not_there_without_a_token_configured(cluster_stack):
    assert get(f"{cluster_stack.server.url}/metrics", headers={"Authorization": "Bearer anything"}).status_code == HTTPStatus.NOT_FOUND


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(base: str) -> str:
    answer = get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == HTTPStatus.OK and answer.headers["content-type"].startswith("text/plain")
    return answer.text


WATCHED = {
    "pw_ok": ("gatehouse_sign_in_steps_total", {"method": "password", "result": "success"}),
    "pw_bad": ("gatehouse_sign_in_steps_total", {"method": "password", "result": "failure"}),
    "pw_locked": ("gatehouse_sign_in_steps_total", {"method": "password", "result": "locked"}),
    "email_ok": ("gatehouse_sign_in_steps_total", {"method": "email", "result": "success"}),
    "email_bad": ("gatehouse_sign_in_steps_total", {"method": "email", "result": "failure"}),
    "signed_in": ("gatehouse_sign_ins_total", {"channel": "api"}),
    "sent": ("gatehouse_codes_sent_total", {}),
    "lock_pw": ("gatehouse_lockouts_total", {"counter": "password"}),
    "lock_code": ("gatehouse_lockouts_total", {"counter": "code"}),
    "refreshed": ("gatehouse_token_refreshes_total", {"result": "success"}),
}


def test_the_counters_move_with_sign_ins_failed_codes_and_lockouts(main_stack, mailbox, used_secrets):
    """On the main host (2 gunicorn workers, JSON logs): every call on a new connection, so
    both workers serve; the counters are the sum of both (multiprocess mode)."""
    base = main_stack.server.url
    before = scrape(base)
    apis = [Api(base, "opsco", used_secrets) for _ in range(3)]
    try:
        # otto: a sign-in without a second factor, then a refresh.
        tokens = apis[0].login("otto")
        assert apis[1].post("auth/token/refresh", {"refreshToken": tokens["refreshToken"]}).status_code == HTTPStatus.OK
        # olga: the password, an emailed code, a wrong code, the right one (signed in).
        token = apis[1].login("olga")["mfaToken"]
        assert apis[2].post("auth/mfa/email/send", {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED
        code = mailbox.code_for("olga@example.com")
        wrong = "000000" if code != "000000" else "111111"
        assert error_of(apis[0].post("auth/mfa/verify", {"mfaToken": token, "code": wrong})) == "invalid_code"
        assert apis[1].post("auth/mfa/verify", {"mfaToken": token, "code": code}).status_code == HTTPStatus.OK
        # olga again: two wrong codes lock her (mfaMaxAttempts 2; the right code reset her count).
        token = apis[2].login("olga")["mfaToken"]
        assert error_of(apis[0].post("auth/mfa/verify", {"mfaToken": token, "code": wrong})) == "invalid_code"
        assert error_of(apis[1].post("auth/mfa/verify", {"mfaToken": token, "code": wrong})) == "locked_out"
        # oskar: two wrong passwords lock him (the second answers like the first); the third is refused.
        for api, expected in ((apis[2], "invalid_credentials"), (apis[0], "invalid_credentials"), (apis[1], "locked_out")):
            assert error_of(api.post("auth/login", {"username": "oskar", "password": "not-" + PASSWORD})) == expected
    finally:
        for api in apis:
            api.close()
    after = scrape(base)
    moved = {key: metric(after, name, **labels) - metric(before, name, **labels) for key, (name, labels) in WATCHED.items()}
    assert moved == {"pw_ok": 3, "pw_bad": 2, "pw_locked": 1, "email_ok": 1, "email_bad": 3, "signed_in": 2, "sent": 1,
                     "lock_pw": 1, "lock_code": 1, "refreshed": 1}
    assert 'gatehouse_notices_queued{state="ready"}' in after
    assert "django_http_responses_total_by_status_total" in after


def test_json_log_lines_carry_the_request_id(main_stack, used_secrets):
    """Each answer's X-Request-ID is on its lines in the JSON log: the access line with
    method, path (no query string), status and duration; a refused sign-in's lines too."""
    server = main_stack.server
    start = len(server.log_text())
    api = Api(server.url, "opsco", used_secrets)
    try:
        answers = [
            get(f"{server.url}/tenant/opsco/login/?next=/tenant/opsco/account/"),
            api.post("auth/login", {"username": "nobody-here", "password": "wrong-password-1"}),
            api.post("auth/mfa/verify", {"mfaToken": "forged", "code": "123456"}),
        ]
    finally:
        api.close()
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == 3
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in server.log_text()[start:].splitlines()]
        if all(any(line.get("request_id") == rid and line["logger"] == "gatehouse.access" for line in lines) for rid in ids):
            break
        time.sleep(0.1)
    for answer, rid in zip(answers, ids):
        access = [line for line in lines if line["request_id"] == rid and line["logger"] == "gatehouse.access"]
        assert len(access) == 1, (rid, lines[-10:])
        line = access[0]
        assert line["status"] == answer.status_code and line["method"] in ("GET", "POST") and line["duration_ms"] >= 0
        assert line["path"] == answer.request.url.path and "?" not in json.dumps(line)


def test_a_server_without_email_url_refuses_to_start_in_one_line(main_stack):
    env = {k: v for k, v in main_stack.env.items() if k != "EMAIL_URL"}
    result = subprocess.run([str(BIN / "gunicorn"), "config.wsgi:application", "-w", "2", "-b", "127.0.0.1:0"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "EMAIL_URL" in lines[0] and "Traceback" not in result.stderr, result.stderr[-2000:]

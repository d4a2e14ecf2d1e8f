"""Faults: the mail server, the database and Redis go away while the service runs. Every
request fails cleanly (a status and a code, never a trace), nothing is counted or half
written, and the service recovers by itself."""
import json
import threading
import time
from http import HTTPStatus
from typing import NamedTuple

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Api, Browserless, error_of, no_trace

pytestmark = pytest.mark.e2e


def test_mail_server_down_answers_503_and_writes_nothing(cluster_stack, mailbox, used_secrets):
    a, b = cluster_stack.servers
    api = Api(a.url, "race", used_secrets)
    db = cluster_stack.db
    uid = db.user_id("race", "smtpdown")
    token = api.login("smtpdown")["mfaToken"]
    page = Browserless(b.url)
    mailbox.stop()
    try:
        for _ in range(2):  # the second try is not "resend too soon": the first wrote nothing
            answer = api.post("auth/mfa/email/send", {"mfaToken": token})
            assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE and error_of(answer) == "email_unavailable"
        # The page says so too (its verify page sends the first code).
        assert page.login("race", "smtpdown").headers["location"].endswith("/mfa/verify/")
        verify = page.http.get("/tenant/race/mfa/verify/")
        assert verify.status_code == HTTPStatus.OK and "could not send" in verify.text.lower()
        no_trace(verify.text)
        assert db.scalar("SELECT count(*) FROM mfa_emailcode WHERE user_id = ?", (uid,)) == 0
        assert db.query("SELECT failed_code_count, locked_until FROM accounts_user WHERE id = ?", (uid,)) == [(0, None)]
    finally:
        mailbox.start()
    sent = api.post("auth/mfa/email/send", {"mfaToken": token})
    assert sent.status_code == HTTPStatus.ACCEPTED, sent.text
    code = mailbox.code_for("smtpdown@example.com")
    assert api.post("auth/mfa/verify", {"mfaToken": token, "code": code}).status_code == HTTPStatus.OK
    api.close()
    page.close()


class Answer(NamedTuple):
    """One answer of the load: ``status`` 0 when no HTTP answer came at all (``body`` says why)."""

    kind: str  # "api" or "page"
    at: float  # time.monotonic() when it came
    status: int
    ctype: str
    retry_after: str
    body: str


class Load:
    """Sign-ins running in the background against both hosts: API logins and page logins.
    Every answer is kept with the moment it came."""

    def __init__(self, stack, secrets_box):
        self.stack = stack
        self.secrets = secrets_box
        self.answers: list[Answer] = []
        self.tokens: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.api_logins, daemon=True), threading.Thread(target=self.page_logins, daemon=True)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def keep(self, kind: str, response: httpx.Response | None, error: str = "") -> None:
        if response is None:
            self.answers.append(Answer(kind, time.monotonic(), 0, "", "", error))
        else:
            headers = response.headers
            self.answers.append(
                Answer(kind, time.monotonic(), response.status_code, headers.get("content-type", ""), headers.get("retry-after", ""), response.text)
            )

    def api_logins(self) -> None:
        clients = [Api(s.url, "race", self.secrets) for s in self.stack.servers]
        n = 0
        while not self.stop.is_set():
            try:
                answer = clients[n % 2].post("auth/login", {"username": "pgdown", "password": PASSWORD})
                if answer.status_code == HTTPStatus.OK:
                    self.tokens.append(answer.json()["refreshToken"])
                self.keep("api", answer)
            except httpx.HTTPError as exc:
                self.keep("api", None, type(exc).__name__)
            n += 1
            time.sleep(0.05)
        for c in clients:
            c.close()

    def page_logins(self) -> None:
        n = 0
        while not self.stop.is_set():
            client = Browserless(self.stack.servers[n % 2].url)
            try:
                page = client.http.get("/tenant/race/login/")
                self.keep("page", page)
                if page.status_code == HTTPStatus.OK:  # post with this page's token: one more GET could meet the outage
                    self.keep("page", client.submit("/tenant/race/login/", {"username": "pgdown", "password": PASSWORD}, page=page))
            except (httpx.HTTPError, AssertionError) as exc:
                self.keep("page", None, type(exc).__name__)
            finally:
                client.close()
            n += 1
            time.sleep(0.05)


def test_database_restart_during_sign_ins_fails_cleanly_and_recovers(cluster_stack, used_secrets):
    """Our own PostgreSQL cluster is stopped for a few seconds and started again while sign-ins
    run on both hosts. Nothing is restarted on the Gatehouse side. Every failure meanwhile is a
    503 with Retry-After (JSON service_unavailable on the API, the plain page on the pages),
    never a 500, and each is logged on one line naming the exception, never a traceback."""
    cluster = cluster_stack.cluster
    log_starts = {s.name: len(s.log_text()) for s in cluster_stack.servers}
    with Load(cluster_stack, used_secrets) as load:
        time.sleep(1.0)
        stopping_at = time.monotonic()
        cluster.ctl("stop")
        down_at = time.monotonic()
        time.sleep(3.0)
        up_at = time.monotonic()
        cluster.ctl("start")
        cluster.wait_ready()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the service comes back by itself, on both hosts
            recent = [x for x in load.answers if x.at > time.monotonic() - 1.5 and x.kind == "api"]
            if len([x for x in recent if x.status == HTTPStatus.OK]) >= 4:
                break
            time.sleep(0.2)
    before = [x for x in load.answers if x.at < stopping_at]
    during = [x for x in load.answers if down_at + 0.5 < x.at < up_at]
    after = [x for x in load.answers if x.at > up_at]
    assert before and during and after
    assert all(x.status in (HTTPStatus.OK, HTTPStatus.FOUND) for x in before), {(x.kind, x.status, x.body[:200]) for x in before if x.status not in (200, 302)}
    # No answer claims success without a database, and each says "try again shortly".
    assert all(x.status == HTTPStatus.SERVICE_UNAVAILABLE for x in during), [(x.kind, x.status, x.body[:300]) for x in during if x.status != 503]
    assert {x.kind for x in during} == {"api", "page"}
    for x in load.answers:
        assert x.status != 0, f"a {x.kind} request got no answer at all: {x.body}"
        no_trace(x.body)
        assert x.status < 500 or x.status == HTTPStatus.SERVICE_UNAVAILABLE, (x.kind, x.status, x.body[:300])
        if x.status == HTTPStatus.SERVICE_UNAVAILABLE:
            assert int(x.retry_after) > 0, (x.kind, x.retry_after)
            if x.kind == "api":
                assert x.ctype.startswith("application/json") and error_of_body(x.body) == "service_unavailable", x.body[:300]
            else:
                assert x.ctype.startswith("text/html") and "Try again shortly" in x.body, x.body[:300]
    for server in cluster_stack.servers:  # the outage in the log: one line per failure, no traceback, no 500
        log = server.log_text()[log_starts[server.name]:]
        assert "Internal Server Error" not in log and "Traceback" not in log, log[-2000:]
        unavailable = [line for line in log.splitlines() if " ERROR django.request Service Unavailable: " in line]
        assert unavailable and all(line.endswith("]") and ("[OperationalError at " in line or "[InterfaceError at " in line) for line in unavailable), unavailable[:5]
    api_after = [x for x in after if x.kind == "api"]
    assert api_after[-1].status == HTTPStatus.OK and [x for x in after if x.kind == "page" and x.status == HTTPStatus.FOUND]
    # No partial state: every refresh token answered was really written, and no failure was left counted.
    api = Api(cluster_stack.servers[1].url, "race", used_secrets)
    try:
        for token in load.tokens[-3:] + load.tokens[:3]:
            assert api.post("auth/token/refresh", {"refreshToken": token}).status_code == HTTPStatus.OK
    finally:
        api.close()
    assert cluster_stack.db.query(
        "SELECT failed_password_count, failed_code_count, locked_until FROM accounts_user WHERE tenant_id='race' AND username='pgdown'"
    ) == [(0, 0, None)]


def error_of_body(body: str) -> str:
    return json.loads(body)["error"]


def test_redis_down_fails_closed_for_the_api_and_the_pages(cluster_stack, used_secrets):
    """Decision (docs/security.md): without Redis the per-IP limit of the sign-in calls cannot
    be counted, so they are refused (fail closed, never a bypass), with a log line saying why:
    the API with 503 rate_limit_unavailable, the pages with a 503 "try again shortly" page;
    both with Retry-After, and nothing behind the limit runs (no password judged, nothing
    counted). Redis back: both work again by themselves."""
    a, b = cluster_stack.servers
    redis = cluster_stack.redis
    db = cluster_stack.db
    uid = db.user_id("race", "redisdown")
    api = Api(a.url, "race", used_secrets)
    page = Browserless(b.url)
    form, _ = page.csrf("/tenant/race/login/")  # showing the form needs no Redis
    redis.stop()
    try:
        for body in ({"username": "redisdown", "password": PASSWORD}, {"username": "redisdown", "password": "wrong-1"}):
            answer = api.post("auth/login", body)
            assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE, answer.text
            assert error_of(answer) == "rate_limit_unavailable" and answer.headers.get("retry-after")
        assert "rate-limit store unreachable" in a.log_text()
        for password in ("wrong-password-2", PASSWORD):
            answer = page.submit("/tenant/race/login/", {"username": "redisdown", "password": password}, page=form)
            assert answer.status_code == HTTPStatus.SERVICE_UNAVAILABLE, answer.text[:300]
            assert answer.headers.get("retry-after") and "try again" in answer.text.lower()
            no_trace(answer.text)
        assert "rate-limit store unreachable" in b.log_text()
        assert db.scalar("SELECT failed_password_count FROM accounts_user WHERE id = ?", (uid,)) == 0  # nothing judged
    finally:
        redis.start()
    deadline = time.monotonic() + 15
    while True:
        answer = api.post("auth/login", {"username": "redisdown", "password": PASSWORD})
        if answer.status_code == HTTPStatus.OK or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert answer.status_code == HTTPStatus.OK, answer.text
    assert page.login("race", "redisdown").status_code == HTTPStatus.FOUND
    api.close()
    page.close()

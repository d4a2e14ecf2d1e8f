"""Security notices go out from the queue, through a real ``manage.py db_worker``, never
inside the request: a slow mail server does not slow a locking request (so the time does not
tell an existing user from an unknown name), and a worker killed in the middle of a send
loses nothing (another worker sends the notice once the dead one's claim is stale)."""
import json
import secrets
import socket
import statistics
import threading
import time
from http import HTTPStatus

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import (
    PASSWORD, Api, Database, Mailbox, Server, Worker, error_of, fresh_database, prepare, seed, server_env,
)

pytestmark = pytest.mark.e2e

USERS = [f"user{n}" for n in range(10)]
UNKNOWN = [f"ghost{n}" for n in range(10)]
SLOW_SMTP_SECONDS = 0.4


def task_row(db) -> tuple[str, list[str]]:
    """The status and workers of the only task of tenant ``crash`` (the victim's notice)."""
    [(status, worker_ids)] = db.query(
        "SELECT status, worker_ids FROM django_tasks_database_dbtaskresult WHERE CAST(args_kwargs AS TEXT) LIKE ?",
        ('%"crash"%',),
    )
    return status, json.loads(worker_ids) if isinstance(worker_ids, str) else worker_ids


class Tarpit:
    """A mail server that takes the connection and then never says a word: a send to it
    hangs until EMAIL_TIMEOUT. ``connected`` is set at the first connection."""

    def __init__(self):
        self.port = free_port()
        self.connected = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self.connected.set()

    def close(self) -> None:
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.fixture(scope="module")
def slow_mailbox(used_secrets):
    box = Mailbox(used_secrets, delay=SLOW_SMTP_SECONDS)
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def notice_stack(tmp_path_factory, slow_mailbox, registry, logdir):
    """A fresh database and one gunicorn host mailing the slow mail server; each test runs
    its own worker(s), so no other worker takes its notices."""
    db = fresh_database(tmp_path_factory)
    registry.databases.append(db)
    env = server_env(db, mailbox=slow_mailbox, secret_key=secrets.token_urlsafe(50), THROTTLE_AUTH_RATE="100000/min")
    server = Server("notices", env, logdir)
    p = PASSWORD
    roster = [
        ["create_tenant", "slowmail", "--name", "Slow Mail", "--password-max-attempts", "2", "--lockout-seconds", "600"],
        ["create_tenant", "crash", "--name", "Crash Test", "--password-max-attempts", "1", "--lockout-seconds", "600"],
        ["create_user", "crash", "victim", "--email", "victim@example.com", "--password", p],
        *(["create_user", "slowmail", name, "--email", f"{name}@slow.example.com", "--password", p] for name in USERS),
    ]
    try:
        prepare(env)
        seed(env, roster)
        server.start()
        registry.servers.append(server)
        yield server, db, env
    finally:
        server.stop()


def test_a_lockout_takes_the_same_time_for_a_user_and_an_unknown_name(notice_stack, slow_mailbox, logdir, registry):
    """Each of 10 users and 10 unknown names fails twice (the limit): the second, locking
    request is timed. The mail server takes SLOW_SMTP_SECONDS per message, which a request
    that sent the notice itself would add to the user's side only."""
    server, db, env = notice_stack
    worker = Worker("timing", env, logdir)
    registry.other_logs.append(worker.log)
    worker.start()
    api = Api(server.url, "slowmail")
    timings = {"user": [], "unknown": []}
    try:
        for n, (user, ghost) in enumerate(zip(USERS, UNKNOWN)):
            pair = [("user", user), ("unknown", ghost)]
            for side, name in pair if n % 2 else reversed(pair):  # alternate who goes first
                first = api.post("auth/login", {"username": name, "password": "wrong-password-1"})
                assert error_of(first) == "invalid_credentials"
                started = time.perf_counter()
                locking = api.post("auth/login", {"username": name, "password": "wrong-password-2"})
                timings[side].append(time.perf_counter() - started)
                assert locking.status_code == HTTPStatus.UNAUTHORIZED and error_of(locking) == "invalid_credentials"
                assert error_of(api.post("auth/login", {"username": name, "password": PASSWORD})) == "locked_out"
        user_median, unknown_median = statistics.median(timings["user"]), statistics.median(timings["unknown"])
        assert max(user_median, unknown_median) <= 1.5 * min(user_median, unknown_median), timings
        # The users' "locked" notices do go out, through the worker and the slow server.
        for name in USERS:
            [message] = slow_mailbox.wait_for(f"{name}@slow.example.com", 1, timeout=60)
            assert message["Subject"] == "Slow Mail: your account is locked for now"
        assert not any("ghost" in str(m["To"]) for m in slow_mailbox.messages)
    finally:
        api.close()
        worker.stop()


def test_a_notice_survives_a_worker_killed_in_the_middle_of_its_send(notice_stack, mailbox, logdir, registry):
    """Guarantee: at least once. Worker 1 claims the notice and hangs on a mail server that
    never answers; it is killed (SIGKILL). Worker 2, on a working mail server, finds the claim
    stale (older than any live send could be) and sends the notice. Here exactly one mail
    arrives, because the dead worker's server never took the message; a worker dying after
    the server took it and before the task is marked done would mean a second copy."""
    server, db, env = notice_stack
    tarpit = Tarpit()
    timeouts = {"EMAIL_TIMEOUT": "2"}
    first = Worker("doomed", {**env, **timeouts, "EMAIL_URL": f"smtp://127.0.0.1:{tarpit.port}"}, logdir)
    second = Worker("successor", {**env, **timeouts, "EMAIL_URL": f"smtp://127.0.0.1:{mailbox.port}"}, logdir)
    registry.other_logs.extend([first.log, second.log])
    api = Api(server.url, "crash")
    try:
        first.start()
        assert error_of(api.post("auth/login", {"username": "victim", "password": "wrong-password-1"})) == "invalid_credentials"
        assert tarpit.connected.wait(timeout=30), "the worker never tried to send the notice"
        first.kill()
        assert task_row(db) == ("RUNNING", [first.worker_id])  # claimed, and nobody left to finish it
        assert not mailbox.to("victim@example.com")
        second.start()
        [message] = mailbox.wait_for("victim@example.com", 1, timeout=90)
        assert message["Subject"] == "Crash Test: your account is locked for now"
        time.sleep(1)
        assert len(mailbox.to("victim@example.com")) == 1
        assert task_row(db) == ("SUCCESSFUL", [first.worker_id, second.worker_id])
        assert "requeued 1 notice(s) whose worker stopped in the middle" in second.log_text()
    finally:
        api.close()
        for w in (first, second):
            w.stop()
        tarpit.close()


def test_a_worker_without_its_database_waits_instead_of_dying(mailbox, logdir, tmp_path):
    """A database outage must not end the worker (notices would wait for someone to restart
    it): it logs one line per try, without a traceback, and keeps going."""
    missing = tmp_path / "no-such-dir" / "gatehouse.sqlite3"
    env = server_env(Database(f"sqlite:///{missing}", missing), mailbox=mailbox, secret_key=secrets.token_urlsafe(50))
    worker = Worker("no-database", env, logdir)
    try:
        worker.start()
        deadline = time.monotonic() + 30
        while worker.log_text().count("database unavailable (OperationalError)") < 2 and time.monotonic() < deadline:
            assert worker.proc.poll() is None, worker.log_text()[-2000:]
            time.sleep(0.2)
        assert worker.log_text().count("database unavailable (OperationalError): the worker waits and goes on") >= 2
        assert worker.proc.poll() is None and "Traceback" not in worker.log_text()
    finally:
        worker.stop()

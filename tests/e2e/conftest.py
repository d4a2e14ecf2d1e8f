"""End-to-end fixtures: Gatehouse started the production way, driven from outside only.

Every server here is a real ``gunicorn config.wsgi:application -w 2`` with ``DEBUG=false``,
on a fresh database (``manage.py migrate``, ``collectstatic --noinput``), seeded with the
``create_tenant``/``create_user`` commands, mailing a real SMTP server (aiosmtpd) run by the
test. Tests talk to it with httpx and Playwright only; the database is read from outside
(sqlite3 / psycopg) to check what was or was not written.

Two stacks:
- ``main``: the database of ``DATABASE_URL`` (a fresh ``gh_e2e_*`` PostgreSQL database when that
  is PostgreSQL, else an SQLite file), local-memory cache: pages, headers, fuzzing, enumeration.
- ``cluster``: our OWN PostgreSQL cluster (port 5433, created and started here, restarted by the
  fault tests) and our OWN redis-server, with two gunicorn hosts A and B: races, several
  hosts, faults. The shared PostgreSQL (5432) and Redis (6379) are never touched.
"""
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, require_tool

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "e2e-Str0ng-passphrase-17"
# The main stack's /metrics token (the leak audit looks for it in the logs too).
METRICS_TOKEN = "e2e-metrics-token-7f3c9a1d5b2e"  # fixed: pytest may import this module twice
# Parallel checkouts on one machine each give their own cluster (the fault tests restart it).
CLUSTER_PORT = int(os.environ.get("GATEHOUSE_E2E_PG_PORT", "5433"))
CLUSTER_NAME = os.environ.get("GATEHOUSE_E2E_PG_CLUSTER", "e2e")
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CODE_RE = re.compile(r"^\s{2,}(\d{6})\s*$", re.M)


def unavailable(reason: str):
    """Skip for a missing prerequisite, except in CI (GATEHOUSE_CI=1) where it fails."""
    if os.environ.get("GATEHOUSE_CI") == "1":
        pytest.fail(f"{reason} (GATEHOUSE_CI=1: nothing may be skipped)")
    pytest.skip(reason)


LAST = ("test_no_secret_in_logs_or_database_dump", "test_json_logs_are_json_lines_with_request_ids")


def pytest_collection_modifyitems(config, items):
    """The leak audits read every log and database the suite produced, so they run last."""
    items[:] = [i for i in items if i.name not in LAST] + [i for i in items if i.name in LAST]


# --- what the suite used: the leak audit looks for each of these --------------------------

class Secrets:
    """Every password, code, TOTP secret and token the suite handled."""

    def __init__(self):
        self._items: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        with self._lock:
            self._items.update(v for v in values if v and len(v) >= 6)

    def __iter__(self):
        with self._lock:
            return iter(sorted(self._items))


@pytest.fixture(scope="session")
def used_secrets() -> Secrets:
    box = Secrets()
    box.add(PASSWORD, METRICS_TOKEN)
    return box


# --- mail ----------------------------------------------------------------------------------

class Mailbox:
    """A real SMTP server on loopback (aiosmtpd) that can be stopped and started again on its
    port; ``delay``: seconds it takes to accept each message (a slow mail server)."""

    def __init__(self, secrets_box: Secrets, delay: float = 0):
        self.port = free_port()
        self.messages: list = []
        self._lock = threading.Lock()
        self._controller = None
        self._secrets = secrets_box
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        msg = message_from_bytes(envelope.content, policy=default_policy)
        with self._lock:
            self.messages.append(msg)
        for code in CODE_RE.findall(msg.get_body(("plain",)).get_content()):
            self._secrets.add(code)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list:
        with self._lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(self, address: str, count: int, timeout: float = 15) -> list:
        """The messages to ``address`` once there are at least ``count``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) to {address}, got {len(self.to(address))}")

    def code_for(self, address: str, count: int = 1) -> str:
        """The sign-in code in the ``count``-th mail with a code to ``address``."""
        end = time.monotonic() + 15
        while time.monotonic() < end:
            codes = [c for m in self.to(address) for c in CODE_RE.findall(m.get_body(("plain",)).get_content())]
            if len(codes) >= count:
                return codes[count - 1]
            time.sleep(0.05)
        raise AssertionError(f"no code number {count} mailed to {address}")


@pytest.fixture(scope="session")
def mailbox(used_secrets):
    box = Mailbox(used_secrets)
    box.start()
    yield box
    box.stop()


# --- databases -----------------------------------------------------------------------------

class Database:
    """A database reached from outside the server: create, query, dump, drop."""

    def __init__(self, url: str, path: Path | None = None):
        self.url = url
        self.path = path

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgres://", "postgresql://"))

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.is_postgres:
            import psycopg

            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        with contextlib.closing(sqlite3.connect(self.path, timeout=10)) as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: tuple = ()):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def user_id(self, tenant: str, username: str) -> str:
        return str(self.scalar("SELECT id FROM accounts_user WHERE tenant_id = ? AND username = ?", (tenant, username)))

    def dump(self) -> str:
        if self.is_postgres:
            return subprocess.run([require_tool("pg_dump"), "--no-owner", self.url], check=True, capture_output=True, text=True, timeout=60).stdout
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            return "\n".join(conn.iterdump())


def fresh_database(tmp_path_factory) -> Database:
    """A new empty database of the kind ``DATABASE_URL`` names: a ``gh_e2e_*`` database on
    that PostgreSQL server, else an SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return _pg_fresh(url)
    path = tmp_path_factory.mktemp("e2e-db") / "gatehouse.sqlite3"
    return Database(f"sqlite:///{path}", path)


def _pg_admin(server_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _pg_fresh(server_url: str) -> Database:
    """A new ``gh_e2e_<random>`` database on the server of ``server_url``."""
    parts = urllib.parse.urlsplit(server_url)
    name = f"gh_e2e_{secrets.token_hex(4)}"
    _pg_admin(parts._replace(path="/postgres").geturl(), f'CREATE DATABASE "{name}"')
    return Database(parts._replace(path=f"/{name}").geturl())


def _pg_drop(db: Database) -> None:
    parts = urllib.parse.urlsplit(db.url)
    name = parts.path.lstrip("/")
    with contextlib.suppress(Exception):
        _pg_admin(parts._replace(path="/postgres").geturl(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- our own PostgreSQL cluster and Redis (never the shared ones) ---------------------------

class Cluster:
    """PostgreSQL cluster ``e2e`` on port 5433: created, configured (trust on loopback) and
    started idempotently with Debian's pg_* tools. Only the fault tests restart it."""

    def __init__(self):
        self.version = ""

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{CLUSTER_PORT}/postgres"

    def ensure(self) -> None:
        for tool in ("pg_createcluster", "pg_ctlcluster", "pg_lsclusters", "pg_isready"):
            require_tool(tool)
        base = Path("/usr/lib/postgresql")
        versions = sorted((p.name for p in base.iterdir() if (p / "bin" / "postgres").exists()), key=float) if base.is_dir() else []
        if not versions:
            unavailable("PostgreSQL server binaries are not installed")
        self.version = versions[-1]
        conf = Path(f"/etc/postgresql/{self.version}/{CLUSTER_NAME}")
        if not conf.exists():
            subprocess.run(
                ["pg_createcluster", self.version, CLUSTER_NAME, "--port", str(CLUSTER_PORT),
                 "-o", "fsync=off", "-o", "synchronous_commit=off", "-o", "full_page_writes=off",
                 "-o", "max_connections=100"],  # Debian clusters listen on localhost only by default
                check=True, capture_output=True, timeout=120,
            )
        hba = conf / "pg_hba.conf"
        trust = "host all all 127.0.0.1/32 trust\n"
        if trust not in hba.read_text():
            hba.write_text(trust + hba.read_text())
            if self.running():
                self.ctl("reload")
        if not self.running():
            self.ctl("start")
        self.wait_ready()

    def running(self) -> bool:
        return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(CLUSTER_PORT), "-q"], timeout=10).returncode == 0

    def ctl(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, CLUSTER_NAME, action],
                       check=True, capture_output=True, timeout=120)

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.running():
                return
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL cluster e2e did not become ready")


class Redis:
    """redis-server on a random loopback port, as a child process; stop/start keeps the port."""

    def __init__(self, logdir: Path):
        self.port = free_port()
        self.proc = None
        self.log = logdir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [require_tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"],
                stdout=out, stderr=subprocess.STDOUT,
            )
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self.cli("PING").strip() == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args: str) -> str:
        result = subprocess.run([require_tool("redis-cli"), "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return result.stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


# --- gunicorn ------------------------------------------------------------------------------

def server_env(db: Database, *, mailbox: Mailbox, secret_key: str, cache_url: str | None = None, **extra: str) -> dict:
    """The environment of a production server, built from scratch (nothing of the test
    process's settings leaks in), using only CONTRACT.md's variables plus gunicorn's."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
        DEBUG="false",
        SECRET_KEY=secret_key,
        SECURE_COOKIES="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=db.url,
        EMAIL_URL=f"smtp://127.0.0.1:{mailbox.port}",
        EMAIL_TIMEOUT="5",
        DEFAULT_FROM_EMAIL="gatehouse@localhost",
    )
    if cache_url:
        env["CACHE_URL"] = cache_url
    env.update(extra)
    return env


def manage(env: dict, *args: str, timeout: float = 180) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


_SEED = """
import io, json, sys
from django.core.management import call_command
out = []
for args in json.loads(sys.stdin.read()):
    buf = io.StringIO()
    call_command(*args, stdout=buf)
    out.append(buf.getvalue().strip().splitlines()[-1])
print(json.dumps(out))
"""


def seed(env: dict, commands: list[list[str]]) -> list[str]:
    """Run Gatehouse's own ``create_tenant``/``create_user`` commands (one process for the
    batch: Django starts once). Returns the id each printed on its last line."""
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", _SEED], cwd=ROOT, env=env, input=json.dumps(commands),
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


_collectstatic_done = threading.Lock()
_collected = []


def prepare(env: dict) -> None:
    """``migrate`` (fresh database) and, once per session, ``collectstatic --noinput``."""
    manage(env, "migrate", "--noinput")
    with _collectstatic_done:
        if not _collected:
            manage(env, "collectstatic", "--noinput")
            _collected.append(True)


class ChildProcess:
    """A process of the service under test (gunicorn, the worker), its output in ``self.log``:
    stopped as a supervisor would (SIGTERM, then SIGKILL for its whole group)."""

    proc: subprocess.Popen | None = None
    log: Path

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Server(ChildProcess):
    """One gunicorn host: 2 workers, its stdout/stderr (access log included) in a file."""

    def __init__(self, name: str, env: dict, logdir: Path, workers: int = 2):
        self.name = name
        self.env = env
        self.port = free_port()
        self.workers = workers
        self.log = logdir / f"gunicorn-{name}.log"
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "config.wsgi:application", "-w", str(self.workers), "-b", f"127.0.0.1:{self.port}",
                 "--access-logfile", "-", "--timeout", "30", "--graceful-timeout", "5"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/login/", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.name} did not answer: {self.log.read_text()[-2000:]}")


class Worker(ChildProcess):
    """One ``manage.py db_worker`` (the notices' queue), run beside gunicorn as in production:
    the same environment, its output in a file that the leak audit reads."""

    def __init__(self, name: str, env: dict, logdir: Path, interval: float = 0.2):
        self.name = name
        self.env = env
        self.interval = interval
        self.worker_id = f"e2e-{name}-{secrets.token_hex(4)}"
        self.log = logdir / f"worker-{name}-{self.worker_id}.log"
        self.proc = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--interval", str(self.interval), "--no-startup-delay",
                 "--worker-id", self.worker_id],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"db_worker {self.name} exited: {self.log_text()[-2000:]}")
            if f"Starting worker worker_id={self.worker_id}" in self.log_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"db_worker {self.name} did not start: {self.log_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no chance to record anything."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Stack:
    """What a group of tests runs against: servers over one database, plus the seeded ids."""

    db: Database
    servers: list[Server]
    env: dict
    ids: dict = field(default_factory=dict)
    redis: Redis | None = None
    cluster: Cluster | None = None

    @property
    def server(self) -> Server:
        return self.servers[0]


class Registry:
    """Every server and database of the session, for the leak audit."""

    def __init__(self):
        self.servers: list[Server] = []
        self.databases: list[Database] = []
        self.other_logs: list[Path] = []


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry()


@pytest.fixture(scope="session")
def logdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


def _main_roster() -> list[list[str]]:
    """Tenants and users of the main stack (ids printed by the commands)."""
    p = PASSWORD
    return [
        ["create_tenant", "acme", "--name", "Acme Corp", "--mfa-max-attempts", "3", "--lockout-seconds", "600"],
        ["create_tenant", "globex", "--name", "Globex", "--password-max-attempts", "3", "--lockout-seconds", "600"],
        ["create_tenant", "initech", "--name", "Initech", "--mfa-required"],
        ["create_tenant", "enum", "--name", "Enum", "--password-max-attempts", "100"],
        ["create_tenant", "apifuzz", "--name", "API Fuzz", "--password-max-attempts", "100", "--mfa-max-attempts", "100"],
        # Only test_fuzz_pages signs in here: its wrong codes must neither lock it early nor lock a user of another test.
        ["create_tenant", "pagefuzz", "--name", "Page Fuzz", "--mfa-required", "--mfa-max-attempts", "100"],
        ["create_user", "acme", "tina", "--email", "tina@example.com", "--password", p, "--mfa", "totp"],
        ["create_user", "acme", "emma", "--email", "emma@example.com", "--password", p, "--mfa", "email"],
        ["create_user", "acme", "nora", "--email", "nora@example.com", "--password", p],
        ["create_user", "acme", "adam", "--email", "adam@example.com", "--password", p, "--mfa", "email", "--admin"],
        ["create_user", "acme", "csrf", "--email", "csrf@example.com", "--password", p, "--mfa", "email"],
        ["create_user", "acme", "csp", "--email", "csp@example.com", "--password", p, "--mfa", "totp"],
        ["create_user", "globex", "gina", "--email", "gina@example.com", "--password", p],
        ["create_user", "globex", "locky", "--email", "locky@example.com", "--password", p],
        ["create_user", "apifuzz", "root", "--email", "root@example.com", "--password", p, "--admin"],
        ["create_user", "apifuzz", "pat", "--email", "pat@example.com", "--password", p, "--mfa", "email"],
        ["create_user", "enum", "erin", "--email", "erin@example.com", "--password", p],
        # Password self-service (test_password_reset): their passwords change.
        ["create_user", "acme", "reed", "--email", "reed@example.com", "--password", p, "--mfa", "email"],
        ["create_user", "acme", "rhea", "--email", "rhea@example.com", "--password", p],
        ["create_user", "initech", "ivan", "--email", "ivan@example.com", "--password", p],
        ["create_user", "pagefuzz", "vera", "--email", "vera@example.com", "--password", p, "--mfa", "email"],
        ["create_user", "pagefuzz", "sid", "--email", "sid@example.com", "--password", p],
        ["create_user", "pagefuzz", "cho", "--email", "cho@example.com", "--password", p],
        # Only test_operations signs in here (its metrics count exactly what it did).
        ["create_tenant", "opsco", "--name", "Ops Co", "--mfa-max-attempts", "2", "--password-max-attempts", "2", "--lockout-seconds", "600"],
        ["create_user", "opsco", "olga", "--email", "olga@example.com", "--password", p, "--mfa", "email"],
        ["create_user", "opsco", "otto", "--email", "otto@example.com", "--password", p],
        ["create_user", "opsco", "oskar", "--email", "oskar@example.com", "--password", p],
    ]


@pytest.fixture(scope="session")
def main_stack(tmp_path_factory, mailbox, registry, logdir):
    """Gatehouse on the database of ``DATABASE_URL`` (fresh), local-memory cache, one host and
    its notices' worker; logs in JSON (``LOG_FORMAT=json``: the leak audit parses every line)
    and ``/metrics`` open to ``METRICS_TOKEN``."""
    db = fresh_database(tmp_path_factory)
    registry.databases.append(db)
    env = server_env(db, mailbox=mailbox, secret_key=secrets.token_urlsafe(50), THROTTLE_AUTH_RATE="100000/min",
                     LOG_FORMAT="json", METRICS_TOKEN=METRICS_TOKEN)
    server = Server("main", env, logdir)
    worker = Worker("main", env, logdir)
    registry.other_logs.append(worker.log)
    try:
        prepare(env)
        ids = seed(env, _main_roster())
        server.start()
        registry.servers.append(server)
        worker.start()
        yield Stack(db=db, servers=[server], env=env, ids=ids)
    finally:
        worker.stop()
        server.stop()
        if db.is_postgres:
            _pg_drop(db)


@pytest.fixture(scope="session")
def secure_server(main_stack, registry, logdir):
    """The same database served with ``SECURE_COOKIES=true`` (cookie flags as in production)."""
    server = Server("secure", {**main_stack.env, "SECURE_COOKIES": "true"}, logdir, workers=1)
    server.start()
    registry.servers.append(server)
    yield server
    server.stop()


def _cluster_roster() -> list[list[str]]:
    p = PASSWORD
    commands = [
        ["create_tenant", "race", "--name", "Race Inc", "--mfa-max-attempts", "3", "--lockout-seconds", "600"],
        ["create_tenant", "hosts", "--name", "Hosts Ltd", "--mfa-max-attempts", "3", "--password-max-attempts", "4", "--lockout-seconds", "600"],
    ]
    for tenant, name, mfa in (
        ("race", "wrong40", "email"), ("race", "valid12", "totp"), ("race", "refresh8", "none"), ("race", "mail8", "email"),
        ("race", "smtpdown", "email"), ("race", "pgdown", "none"), ("race", "redisdown", "none"),
        ("hosts", "codeuse", "email"), ("hosts", "replay", "totp"), ("hosts", "sumfail", "none"), ("hosts", "revoke", "none"),
        ("race", "revokee", "none"), *(("hosts", f"par{i}", "none") for i in range(12)),
        *(("race", f"setup{i}", "totp") for i in range(4)),
    ):
        commands.append(["create_user", tenant, name, "--email", f"{name}@example.com", "--password", p, "--mfa", mfa])
    commands.append(["create_user", "race", "boss", "--email", "boss@example.com", "--password", p, "--admin"])
    return commands


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    c.ensure()
    return c


@pytest.fixture(scope="session")
def cluster_stack(cluster, mailbox, registry, logdir):
    """Hosts A and B (2 workers each) over one PostgreSQL database on our own cluster and one Redis."""
    redis = Redis(logdir)
    redis.start()
    registry.other_logs.append(redis.log)
    db = _pg_fresh(cluster.url)
    registry.databases.append(db)
    env = server_env(db, mailbox=mailbox, secret_key=secrets.token_urlsafe(50), cache_url=redis.url,
                     THROTTLE_AUTH_RATE="100000/min", CONN_MAX_AGE="60")
    servers = [Server("host-a", env, logdir), Server("host-b", env, logdir)]
    worker = Worker("cluster", env, logdir)
    registry.other_logs.append(worker.log)
    try:
        prepare(env)
        ids = seed(env, _cluster_roster())
        for s in servers:
            s.start()
            registry.servers.append(s)
        worker.start()
        yield Stack(db=db, servers=servers, env=env, ids=ids, redis=redis, cluster=cluster)
    finally:
        worker.stop()
        for s in servers:
            s.stop()
        redis.stop()
        if not cluster.running():
            cluster.ctl("start")
            cluster.wait_ready()
        _pg_drop(db)


# --- clients -------------------------------------------------------------------------------

class Browserless:
    """A cookie-keeping httpx client that speaks the pages' forms (CSRF token included)."""

    def __init__(self, base: str):
        self.http = httpx.Client(base_url=base, timeout=30, follow_redirects=False)

    def close(self):
        self.http.close()

    def csrf(self, path: str) -> tuple[httpx.Response, str]:
        page = self.http.get(path)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return page, match.group(1)

    def submit(self, path: str, data: dict, *, token_from: str | None = None, page: httpx.Response | None = None) -> httpx.Response:
        """POST the form at ``path``, with the CSRF token of ``page`` if given (else fetched anew)."""
        if page is not None:
            match = CSRF_RE.search(page.text)
            assert match, f"no CSRF token on {path} ({page.status_code})"
            token = match.group(1)
        else:
            _, token = self.csrf(token_from or path)
        return self.http.post(path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": str(self.http.base_url) + path})

    def login(self, tenant: str, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.submit(f"/tenant/{tenant}/login/", {"username": username, "password": password})


@pytest.fixture
def page_client(main_stack):
    client = Browserless(main_stack.server.url)
    yield client
    client.close()


class Api:
    """A JSON client for one tenant's API on one host; every token it sees goes to the leak audit."""

    def __init__(self, base: str, tenant: str, secrets_box: Secrets | None = None):
        self.tenant = tenant
        self.http = httpx.Client(base_url=f"{base}/tenant/{tenant}/v2/", timeout=60,
                                 limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        self._secrets = secrets_box

    def close(self):
        self.http.close()

    def post(self, path: str, body, **kwargs) -> httpx.Response:
        response = self.http.post(path, json=body, **kwargs)
        self._remember(response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        if self._secrets is None or "json" not in response.headers.get("content-type", ""):
            return
        data = response.json()
        if isinstance(data, dict):
            self._secrets.add(*(str(data.get(k) or "") for k in ("accessToken", "refreshToken", "secret", "otpauthUri")))
            self._secrets.add(*(data.get("recoveryCodes") or []))

    def login(self, username: str, password: str = PASSWORD) -> dict:
        response = self.post("auth/login", {"username": username, "password": password})
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def enroll_totp(self, username: str) -> tuple[str, str]:
        """Set the app up through the API with codes from oathtool. Returns (secret, the next
        step's code), the latter good for one more sign-in within the allowed drift."""
        challenge = self.login(username)
        assert challenge["enrollmentRequired"] and challenge["mfaMethod"] == "totp"
        setup = self.post("auth/mfa/totp/setup", {"mfaToken": challenge["mfaToken"]})
        assert setup.status_code == 200, setup.text
        secret = setup.json()["secret"]
        assert secret_from_uri(setup.json()["otpauthUri"]) == secret
        now_code, next_code = oathtool(secret, window=1)
        done = self.post("auth/mfa/verify", {"mfaToken": challenge["mfaToken"], "code": now_code})
        assert done.status_code == 200 and len(done.json()["recoveryCodes"]) == 10, done.text
        if self._secrets is not None:
            self._secrets.add(now_code, next_code)
        return secret, next_code


def parallel(calls: list) -> list:
    """Run the calls at once (threads released together by a barrier); their results in order."""
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def error_of(response: httpx.Response) -> str:
    """The ``error`` code of a JSON error answer (and proof it is one)."""
    assert response.headers.get("content-type", "").startswith("application/json"), (response.status_code, response.text[:200])
    no_trace(response.text)
    return response.json()["error"]


def oathtool(secret: str, window: int = 0) -> list[str]:
    """Codes from Debian's oathtool (an independent RFC 6238 implementation): the current
    step first, then the next ``window`` steps."""
    out = subprocess.run([require_tool("oathtool"), "--totp", "-b", "-w", str(window), secret],
                         check=True, capture_output=True, text=True, timeout=10).stdout
    return out.split()


def secret_from_uri(uri: str) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    return query["secret"][0]


def no_trace(text: str) -> None:
    """A response body must never show a traceback, a Django debug page or an exception name."""
    for marker in ("Traceback", "File \"/", "django.db.utils", "OperationalError", "IntegrityError", "DEBUG = True",
                   "Exception Value", "psycopg", "site-packages"):
        assert marker not in text, f"trace marker {marker!r} in response"

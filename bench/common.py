"""What every part of the bench shares: paths, the namespace (databases, Redis db), logging,
subprocesses, the databases, a gunicorn (or granian) server, and the SMTP sink for emailed codes."""
from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.httpload import Connection

ROOT = Path(__file__).resolve().parent.parent

BENCH = ROOT / "bench"
DATA = BENCH / ".data"
RESULTS = BENCH / "results"
PY = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PEER = BENCH / "peers"
PEER_VENV = PEER / ".venv"
PEER_PY = PEER_VENV / "bin" / "python"
ALLAUTH = PEER / "allauth"  # the second peer: django-allauth (account, mfa, headless)
ALLAUTH_VENV = ALLAUTH / ".venv"
TENANT = "bench"
CORES = os.cpu_count() or 2
WORKERS = int(os.environ.get("BENCH_WORKERS", CORES))  # server workers (Gatehouse and the peers alike)
# More gunicorn options for every gunicorn the bench starts.
GUNICORN_ARGS = shlex.split(os.environ.get("BENCH_GUNICORN_ARGS", ""))
HOST = "127.0.0.1"


def _namespace() -> tuple[str, int]:
    """Two benches on one machine (two worktrees, two engineers) share the PostgreSQL server
    and Redis: each names its own databases (``<prefix>_small`` ...) and its own Redis db."""
    prefix = os.environ.get("BENCH_DB_PREFIX", "gh_bench")
    redis_db = os.environ.get("BENCH_REDIS_DB", "5")
    # The prefix goes into CREATE/DROP DATABASE unquoted, and "_schema" must still fit in 63 bytes.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise SystemExit(f"bench: BENCH_DB_PREFIX={prefix!r} is not a lower-case SQL name of at most 41 characters")
    if not redis_db.isdigit():
        raise SystemExit(f"bench: BENCH_REDIS_DB={redis_db!r} is not a Redis database number")
    return prefix, int(redis_db)


DB_PREFIX, REDIS_DB = _namespace()


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- profile -------------------------------------------------------------------------------


# --- databases -------------------------------------------------------------------------------

class Databases:
    """PostgreSQL when DATABASE_URL says so (our own <DB_PREFIX>_* databases on that server), else SQLite files."""

    def __init__(self, url: str | None):
        self.url = url or ""
        self.postgres = self.url.startswith(("postgres://", "postgresql://", "pgsql://"))
        if self.postgres:
            parts = urlsplit(self.url)
            self.server = parts._replace(path="/postgres").geturl()
            self.base = parts._replace(path="").geturl()

    @property
    def kind(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    @staticmethod
    def db_name(name: str) -> str:
        return f"{DB_PREFIX}_{name}"

    def url_for(self, name: str) -> str:
        if self.postgres:
            return f"{self.base}/{self.db_name(name)}"
        return f"sqlite:///{DATA / f'{name}.sqlite3'}"

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            for s in statements:
                conn.execute(s)

    def fresh(self, name: str, template: str | None = None) -> str:
        if self.postgres:
            db = self.db_name(name)
            create = f"CREATE DATABASE {db}" + (f" TEMPLATE {self.db_name(template)}" if template else "")
            self._admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", create)
        else:
            path = DATA / f"{name}.sqlite3"
            for p in (path, Path(f"{path}-journal"), Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
            if template:
                shutil.copyfile(DATA / f"{template}.sqlite3", path)
        return self.url_for(name)

    def drop(self, name: str) -> None:
        if self.postgres:
            self._admin(f"DROP DATABASE IF EXISTS {self.db_name(name)} WITH (FORCE)")
        else:
            (DATA / f"{name}.sqlite3").unlink(missing_ok=True)

    def server_version(self) -> str:
        if not self.postgres:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        import psycopg

        with psycopg.connect(self.server) as conn:
            return "PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0].split()[0]


# --- processes -----------------------------------------------------------------------------

def run(cmd: list, *, env: dict, cwd: Path = ROOT, quiet: bool = True) -> str:
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"bench: command failed ({proc.returncode}): {' '.join(map(str, cmd[:4]))} ...")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# Serving models: "sync" is production's (gunicorn sync workers, one per core, a new
# connection per request); "gthread" (gunicorn threads, connections kept alive) and "granian"
# (its WSGI interface) are tried beside it on the cheap scenarios.
SERVING = {
    "sync": [],
    "gthread": ["-k", "gthread", "--threads", "4", "--keep-alive", "5"],
}


class Server:
    """One server under test, started the way production starts Gatehouse (gunicorn sync workers,
    one per core) unless ``serving`` names another model (``SERVING``, or "granian")."""

    def __init__(self, *, name: str, venv: Path, app: str, cwd: Path, env: dict, workers: int = WORKERS,
                 serving: str = "sync"):
        self.name, self.port, self.serving = name, free_port(), serving
        self.log = open(DATA / f"{name}.server.log", "w")
        if serving == "granian":
            cmd = [str(venv / "bin" / "granian"), "--interface", "wsgi", app, "--host", HOST, "--port", str(self.port),
                   "--workers", str(workers), "--blocking-threads", "1", "--log-level", "warning", "--no-ws"]
        else:
            cmd = [str(venv / "bin" / "gunicorn"), app, "-w", str(workers), "-b", f"{HOST}:{self.port}", "--log-level",
                   "warning", "--graceful-timeout", "5", "--timeout", "60", *SERVING[serving], *GUNICORN_ARGS]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers = workers

    async def wait_ready(self, path: str) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: {self.name} exited; see {self.log.name}")
            try:
                conn = Connection(HOST, self.port)
                r = await conn.request("GET", path)
                conn.close()
                if r.status < 500 and len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise SystemExit(f"bench: {self.name} did not start; see {self.log.name}")

    def worker_pids(self) -> list[int]:
        return children_of(self.proc.pid)

    def pids(self) -> list[int]:
        """The master and every process below it: all of them count in the CPU of a leg."""
        return [self.proc.pid, *descendants_of(self.proc.pid)]

    def peak_rss_kib(self) -> list[int]:
        out = []
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    m = re.search(r"VmHWM:\s+(\d+)", f.read())
                out.append(int(m.group(1)) if m else 0)
            except OSError:
                pass
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the master we started; it stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def children_of(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def descendants_of(pid: int) -> list[int]:
    out, todo = [], children_of(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children_of(child)
    return out


async def warm(server: Server, requests: list[tuple[str, str]]) -> None:
    conn = Connection(HOST, server.port)
    for _ in range(10):
        for method, path in requests:
            await conn.request(method, path)
    conn.close()



CODE_RE = re.compile(rb"^\s{4}(\d{6})\s*$", re.M)


class MailSink:
    """An SMTP server in this process: it hands each emailed code to whoever waits for it."""

    def __init__(self):
        self.waiting: dict[str, asyncio.Future] = {}
        self.received = 0

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        m = CODE_RE.search(envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode())
        if m:
            for rcpt in envelope.rcpt_tos:
                fut = self.waiting.pop(rcpt.lower(), None)
                if fut is not None and not fut.done():
                    fut.set_result(m.group(1).decode())
        return "250 OK"

    def expect(self, rcpt: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[rcpt.lower()] = fut
        return fut

    async def start(self) -> int:
        from aiosmtpd.smtp import SMTP

        port = free_port()
        self.server = await asyncio.get_running_loop().create_server(lambda: SMTP(self, hostname="bench-sink"), HOST, port)
        return port


# --- scenarios -------------------------------------------------------------------------------

"""`make bench` / `make bench-quick`: Gatehouse measured side by side with its bounds and a peer.

For each dataset (1,000 users; and 1,000,000 users when DATABASE_URL is PostgreSQL and the
profile is full) the script creates a fresh database, seeds it in bulk, and starts one
Gatehouse server per dataset the production way (gunicorn, one sync worker per core,
DEBUG=false, Redis cache, SMTP mail to a sink that lives in this process); it drives them
over HTTP with ``bench.httpload``, one at a time. With two datasets each scenario runs in
legs 1k, 1M, 1M, 1k, 1k, 1M, 1M, 1k (A-B-B-A twice, each leg a quarter of the scenario's
seconds), so the 1M/1k ratio comes from adjacent seconds and a linear drift of the machine
cancels. Around each password-bound
scenario it measures the Argon2 bound (verifies per second, one process per core); the
cheap endpoints are set against an empty Django view through the same server. The peer
(bench/peers/: django-two-factor-auth + django-otp, own venv, same hasher and database
kind) gets the same client and the same scheduling, on its own 1k database; its server is
up beside ours, and its trivial view and TOTP step run interleaved with ours. A reference
for the password sign-in, the Argon2 verify alone behind the same gunicorn (bench/hashonly.py),
runs its legs in that scenario's group.

BENCH_DB_PREFIX (default gh_bench) names the PostgreSQL databases and BENCH_REDIS_DB
(default 5) the Redis db, so two benches on one machine keep apart.

Results: a table on stdout, bench/results/latest.json, latest.md and latest.svg.
Not part of the test suite: nothing here is a timed test.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import hmac
import importlib.util
import json
import multiprocessing
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import socket
import struct
import subprocess
import sys
import time
from base64 import b32decode
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.hashonly import params_from_env  # noqa: E402
from bench.httpload import Connection, Exhausted, Op, Result, run_closed_loop  # noqa: E402

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
CORES = os.cpu_count() or 2  # the Argon2 bound: one process per core
WORKERS = int(os.environ.get("BENCH_WORKERS", CORES))  # gunicorn sync workers (Gatehouse and the peer alike)
# More gunicorn options for both servers, to try another serving model ("-k gthread --threads 1").
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

class Profile:
    def __init__(self, quick: bool):
        self.quick = quick
        self.name = "quick" if quick else "full"
        # Seconds per scenario and dataset; with two datasets each gets them in 2 * leg_rounds legs (``leg_order``).
        self.hash_s = 3.0 if quick else 10.0  # password-bound scenarios
        self.cheap_s = 2.0 if quick else 6.0  # cheap endpoints
        self.leg_rounds = 1 if quick else 2  # rounds of A-B-B-A legs per scenario (``leg_order``)
        # The Argon2 bound, in short windows: within a password-bound scenario's group of legs,
        # ``bound_gap_windows`` before each leg and after the last (a leg's bound is the median
        # of the windows on both sides of it); around the storm, ``bound_windows``, half right
        # before and half right after it (the bound is their median).
        self.bound_windows = 4 if quick else 8
        self.bound_window_s = 0.25 if quick else 0.5
        self.bound_gap_windows = 2
        self.bound_s = self.bound_windows * self.bound_window_s
        self.hot_rounds = 1 if quick else 6  # the storm's rounds (even: each dataset goes first as often)
        self.hash_conc = 8
        self.cheap_conc = 16


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


class Server:
    """gunicorn, the production way: sync workers, one per core."""

    def __init__(self, *, name: str, gunicorn: Path, app: str, cwd: Path, env: dict, workers: int):
        self.name, self.port = name, free_port()
        self.log = open(DATA / f"{name}.gunicorn.log", "w")
        cmd = [str(gunicorn), app, "-w", str(workers), "-b", f"{HOST}:{self.port}", "--log-level", "warning",
               "--graceful-timeout", "5", "--timeout", "60", *GUNICORN_ARGS]
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
        pid = self.proc.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

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


# --- the Argon2 bound ------------------------------------------------------------------------

def _argon2_worker(params: tuple[int, int, int], seconds: float) -> tuple[int, float]:
    from argon2 import PasswordHasher, Type

    m, t, p = params
    hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
    encoded = hasher.hash("correct horse battery staple 42")
    hasher.verify(encoded, "correct horse battery staple 42")  # warm
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        hasher.verify(encoded, "correct horse battery staple 42")
        n += 1
    return n, time.perf_counter() - t0


class Argon2Bound:
    """Verifies per second with one process per core: the physical limit of a password sign-in.

    One measurement is several short windows (``window``); ``bracket`` takes half of them
    right before a scenario and half right after it, and the bound is their median, so a
    window disturbed by a neighbour, or a drift during the scenario, does not make the ratio."""

    def __init__(self, params: tuple[int, int, int], processes: int):
        self.params, self.processes = params, processes
        self.pool = concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
        list(self.pool.map(_argon2_worker, [params] * processes, [0.2] * processes))  # start and warm the processes

    def window(self, seconds: float) -> float:
        results = list(self.pool.map(_argon2_worker, [self.params] * self.processes, [seconds] * self.processes))
        return sum(n / el for n, el in results)

    def windows(self, count: int, seconds: float) -> list[float]:
        return [self.window(seconds) for _ in range(count)]

    def summary(self, rates: list[float], rate: float | None = None) -> dict:
        """The windows ``rates`` and the bound they give: their median, unless ``rate`` says otherwise."""
        rate = (statistics.median(rates) if rates else 0.0) if rate is None else rate
        return {
            "name": "argon2",
            "opsPerS": round(rate, 1),
            "msPerVerify": round(1000 * self.processes / rate, 2) if rate else None,
            "processes": self.processes,
            "windows": [round(r, 1) for r in rates],
            "spread": round((max(rates) - min(rates)) / rate, 3) if rate else None,
        }

    def close(self) -> None:
        self.pool.shutdown()


# --- TOTP codes and their scheduling ---------------------------------------------------------

class Totp:
    """Codes of the one seeded secret, and who may use which time step next.

    RFC 6238 replay protection lets a user pass one code per time step, within ±1 step of
    now: so a user has at most 3 codes in a burst, then one per 30 s. The scheduler hands
    each user the earliest step still open to them, and the run ends early when every user
    of the pool is spent (at 1,000 users the pool, not the server, can be the limit)."""

    def __init__(self, secret: str):
        self.key = b32decode(secret)
        self.codes: dict[int, str] = {}

    def code(self, step: int) -> str:
        if step not in self.codes:
            digest = hmac.new(self.key, struct.pack(">Q", step), hashlib.sha1).digest()
            offset = digest[-1] & 0x0F
            value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
            self.codes[step] = f"{value:06d}"
        return self.codes[step]


class TotpPool:
    """One scenario's TOTP users on one system, handed out round-robin. A pool lives as long
    as its system, so a scenario's second leg there goes on where the first stopped, and
    ``last`` (one per system, shared by all its pools) keeps every user/step it handed out.
    ``left(user)``: how many more codes that user can take (pending sessions left, say); None: no limit."""

    def __init__(self, users: list[str], last: dict[str, int], left=None):
        self.users = deque(users)
        self.last = last  # shared per system: the server's replay state, as the client knows it
        self.left = left

    @staticmethod
    def _window(now: float, within: float = 0.0) -> tuple[int, int]:
        """The steps a code may be for now (RFC 6238, one step either side): an old step that
        falls out of the window within ``within`` seconds (or 2 s, to be safe) is not used."""
        cur = int(now // 30)
        return (cur - 1 if now % 30 + max(within, 2.0) < 30 else cur), cur + 1

    def take(self) -> tuple[str, int]:
        low, high = self._window(time.time())
        for _ in range(len(self.users)):
            user = self.users.popleft()
            self.users.append(user)
            step = max(self.last.get(user, 0) + 1, low)
            if step <= high and (self.left is None or self.left(user) > 0):
                self.last[user] = step
                return user, step
        raise Exhausted()

    def open_codes(self, within: float) -> int:
        """How many codes ``take`` can hand out from now on and for the next ``within`` seconds
        without waiting for a new time step (each user once per step)."""
        low, high = self._window(time.time(), within)
        total = 0
        for user in self.users:
            n = max(high - max(self.last.get(user, 0) + 1, low) + 1, 0)
            total += n if self.left is None else min(n, self.left(user))
        return total


# --- the email sink --------------------------------------------------------------------------

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

def body_has(resp, key: str) -> bool:
    return f'"{key}"'.encode() in resp.body


@dataclass
class System:
    """A server under test and the client-side state its scenarios draw on (``ops``: name ->
    ``async op(conn, Op)``). Both legs of a scenario on one system share that state, because
    the server keeps its own across them: the TOTP steps each user has spent, the refresh
    tokens already rotated, the pending sessions already completed."""

    label: str  # "1k", "1m", "peer": the log's and latest.json's name
    server: Server
    ops: dict
    results: dict = field(default_factory=dict)
    aliases: dict = field(default_factory=dict)  # a scenario's name -> this system's own op for it (the peer's pages)

    def own(self, name: str) -> str:
        """This system's name for scenario ``name``: its op, and the key of its result."""
        return self.aliases.get(name, name)

    def op(self, name: str):
        return self.ops[self.own(name)]


def leg_order(systems: int, rounds: int = 1) -> tuple[int, ...]:
    """Which system each leg of a scenario runs on. One system: one leg. More (1k and 1M
    users, and the peer where it is compared): ``rounds`` times A-B-B-A (A-B-C-C-B-A), so
    every system is measured around the same mean time and a drift that is linear over the
    group (a neighbour's load, the CPU's clock) weighs on all alike; with more rounds, of
    shorter legs, a burst of the machine's noise within one leg weighs less on a ratio."""
    if systems == 1:
        return (0,)
    return (tuple(range(systems)) + tuple(reversed(range(systems)))) * rounds


def leg_bounds(gaps: list[list[float]], positions: list[int]) -> list[tuple[int, float]]:
    """Each leg's Argon2 bound: the median of the windows on both sides of it (``gaps[k]`` were
    taken right before the leg at position k, ``gaps[k + 1]`` right after it)."""
    return [(position, statistics.median(gaps[position] + gaps[position + 1])) for position in positions]


class Runner:
    def __init__(self, profile: Profile, bound: Argon2Bound, sink: MailSink):
        self.p, self.bound, self.sink = profile, bound, sink

    def bound_gap(self) -> list[float]:
        """The Argon2 bound windows taken between two legs of a password-bound scenario (and before the first, after the last)."""
        return self.bound.windows(self.p.bound_gap_windows, self.p.bound_window_s)

    def bound_half(self) -> list[float]:
        """Half of an Argon2 bound measurement: taken right before, and again right after, what it bounds."""
        return self.bound.windows(self.p.bound_windows // 2, self.p.bound_window_s)

    @staticmethod
    def _codes_cap(op, *, within: float, legs: int) -> int | None:
        pool = getattr(op, "pool", None)
        return None if pool is None else max(pool.open_codes(within) // legs, 1)

    async def measure(self, systems: list[System], key: str, label: str, *, conc: int, duration: float, op: str | None = None,
                      argon2: bool = False, baseline: str | None = None, per_op_requests: int = 1) -> None:
        """Run scenario ``op`` (default ``key``) on every system and store each one's result under ``key``.

        Each system gets ``duration`` seconds in all, in the legs of ``leg_order``; its rate is
        the mean of its legs' rates, with percentiles from all their samples.
        The ratio is over the Argon2 bound (``argon2``: windows before each leg and after the
        last; a leg's bound is the median of the windows on both sides of it, and a system's
        bound the mean of its legs' bounds, as its rate is the mean of its legs' rates) or over
        the system's own rate of the
        op ``baseline`` (the empty view), measured in legs of its own right beside each of the
        scenario's legs: before it in the first half of each round of legs, after it in the
        second, so a drift of the machine weighs on scenario and baseline alike."""
        order = leg_order(len(systems), self.p.leg_rounds)
        leg_s = duration * len(systems) / len(order)
        # A TOTP scenario's legs on one system stop at an equal share of the codes its users
        # can still pass within the whole group (RFC 6238: one per user and time step), so no
        # leg runs dry part-way, and the legs of a dataset are about as long (``TotpPool``).
        group_s = leg_s * len(order) * (2 if baseline else 1)
        caps = [self._codes_cap(s.op(op or key), within=group_s, legs=order.count(i)) for i, s in enumerate(systems)]
        gaps = [self.bound_gap()] if argon2 else []
        legs: list[list[tuple[int, Result]]] = [[] for _ in systems]
        base_legs: list[list[tuple[int, Result]]] = [[] for _ in systems]
        for position, i in enumerate(order):
            server = systems[i].server
            steps = [(base_legs, baseline, None), (legs, op or key, caps[i])] if baseline else [(legs, op or key, caps[i])]
            first_half = position % (2 * len(systems)) < len(systems)
            for into, name, cap in steps if first_half else reversed(steps):
                res = await run_closed_loop(HOST, server.port, concurrency=conc, duration=leg_s, op=systems[i].op(name),
                                            max_ops=cap, server_pids=server.worker_pids())
                into[i].append((position, res))
            if argon2:
                gaps.append(self.bound_gap())
        for system, cap, runs, base_runs in zip(systems, caps, legs, base_legs):
            res = Result.combined([r for _, r in runs])
            capped = cap is not None and any(r.ops >= cap for _, r in runs)
            out = {"scenario": label, **res.summary(), "concurrency": conc, "requestsPerOp": per_op_requests,
                   "opsCapPerLeg": cap, "capped": capped,
                   "legs": [{"position": position, "ops": r.ops, "errors": r.errors, "elapsedS": round(r.elapsed, 3),
                             "opsPerS": round(r.rate, 1)} for position, r in runs]}
            if argon2:
                beside = leg_bounds(gaps, [position for position, _ in runs])
                rate = statistics.mean(b for _, b in beside)
                out["bound"] = {**self.bound.summary([w for gap in gaps for w in gap], rate), "interleaved": True,
                                "legs": [{"position": position, "opsPerS": round(b, 1)} for position, b in beside]}
                out["ratio"] = round(res.rate / rate, 3) if rate else None
            elif baseline is not None:
                empty = Result.combined([r for _, r in base_runs]).rate
                out["bound"] = {"name": "empty view", "opsPerS": round(empty, 1), "interleaved": True,
                                "legs": [{"position": position, "opsPerS": round(r.rate, 1)} for position, r in base_runs]}
                out["ratio"] = round(res.rate / empty, 3) if empty else None
            system.results[system.own(key)] = out
            legs_note = f" (legs {' + '.join(f'{r.rate:.1f}' for _, r in runs)})" if len(runs) > 1 else ""
            flag = f"  ratio {out['ratio']:.2f} of {out['bound']['name']}" if out.get("ratio") is not None else ""
            log(f"  {system.label:7s} {label:24s} {res.rate:8.1f} ops/s{legs_note}  err {res.errors:4d}  "
                f"client {out['clientCpuCores']:.2f} cores{flag}" + ("  (pool spent)" if res.exhausted else "")
                + (f"  (legs capped at {cap:,} codes)" if capped else ""))
        a = systems[0].results[systems[0].own(key)]["opsPerS"]
        for other in systems[1:]:
            b = other.results[other.own(key)]["opsPerS"]
            log(f"  {other.label}/{systems[0].label} {label:24s} {b / a if a else float('nan'):.3f}")


@dataclass
class Dataset:
    """One Gatehouse database (1,000 or 1,000,000 users) and, once its server runs, its System."""

    key: str  # "1k" / "1m": the name in latest.json
    name: str  # "small" / "large": the database's and the scratch files' name
    env: dict
    seed: dict
    queries: dict
    commit_ms: float | None
    setup_s: float
    fx: dict = field(default_factory=dict)
    system: System | None = None


def gatehouse_ops(runner: Runner, seed: dict, fx: dict, totp: Totp) -> dict:
    """The scenarios' operations on one dataset, with the state they share: one instance per
    dataset, used by both of its legs (see ``System``)."""
    base = f"/tenant/{TENANT}"
    api = f"{base}/v2"
    password = seed["password"]
    lay = seed["layout"]
    pwd_users = [f"u{i:07d}" for i in range(*lay["pwd"])]
    csrf = fx["csrf"]
    auth = {"Authorization": f"Bearer {fx['adminAccess']}"}
    # What this dataset's server knows of each TOTP user's last step; every TOTP pool of the
    # dataset draws on it, in every leg, so no user/step is handed out twice.
    last: dict[str, int] = {}

    async def empty(conn, o: Op):
        o.expect(await conn.request("GET", "/bench/empty/"), 200, "empty")

    rr = {"i": 0}

    def next_of(items):
        rr["i"] += 1
        return items[rr["i"] % len(items)]

    async def password_api(conn, o):
        r = o.expect(await conn.post_json(f"{api}/auth/login", {"username": next_of(pwd_users), "password": password}), 200, "login")
        if not body_has(r, "accessToken"):
            o.fail("login: no tokens")

    async def password_page(conn, o):
        r = o.expect(await conn.post_form(f"{base}/login/", {"csrfmiddlewaretoken": csrf, "username": next_of(pwd_users), "password": password},
                                          cookies={"csrftoken": csrf}), 302, "login page")
        if not r.headers.get("location", "").endswith("/account/"):
            o.fail(f"login page: redirected to {r.headers.get('location')}")

    # Pending sign-ins are single-use: each minted mfaToken (and page session, and the email
    # users' tokens) is handed out once.
    api_tokens = dict(fx["totpApi"])
    api_pool = TotpPool(list(api_tokens), last, left=lambda u: int(u in api_tokens))

    async def totp_api(conn, o):
        user, step = api_pool.take()
        r = o.expect(await conn.post_json(f"{api}/auth/mfa/verify", {"mfaToken": api_tokens.pop(user), "code": totp.code(step)}), 200, "verify")
        if not body_has(r, "accessToken"):
            o.fail("verify: no tokens")

    totp_api.pool = api_pool

    page_sessions = {u: list(keys) for u, keys in fx["totpPage"].items()}
    page_pool = TotpPool(list(page_sessions), last, left=lambda u: len(page_sessions[u]))

    async def totp_page(conn, o):
        user, step = page_pool.take()
        sid = page_sessions[user].pop()
        r = o.expect(await conn.post_form(f"{base}/mfa/verify/", {"csrfmiddlewaretoken": csrf, "code": totp.code(step)},
                                          cookies={"csrftoken": csrf, "sessionid": sid}), 302, "verify page")
        if not r.headers.get("location", "").endswith("/account/"):
            o.fail(f"verify page: redirected to {r.headers.get('location')}")

    totp_page.pool = page_pool

    pwd_totp_pool = TotpPool(fx["pwdTotp"], last)

    async def password_totp_api(conn, o):
        user, step = pwd_totp_pool.take()
        r = o.expect(await conn.post_json(f"{api}/auth/login", {"username": user, "password": password}), 200, "login")
        token = r.json().get("mfaToken")
        if not token:
            o.fail("login: no mfaToken")
        r = o.expect(await conn.post_json(f"{api}/auth/mfa/verify", {"mfaToken": token, "code": totp.code(step)}), 200, "verify")

    password_totp_api.pool = pwd_totp_pool

    email_users = deque(fx["email"].items())

    async def email_api(conn, o):
        if not email_users:
            raise Exhausted()
        user, token = email_users.popleft()
        waiter = runner.sink.expect(f"{user}@bench.example")
        o.expect(await conn.post_json(f"{api}/auth/mfa/email/send", {"mfaToken": token}), 202, "email send")
        code = await asyncio.wait_for(waiter, 10)
        o.expect(await conn.post_json(f"{api}/auth/mfa/verify", {"mfaToken": token, "code": code}), 200, "email verify")

    refresh_tokens = deque(fx["refresh"])

    async def refresh(conn, o):
        if not refresh_tokens:
            raise Exhausted()
        token = refresh_tokens.popleft()
        r = o.expect(await conn.post_json(f"{api}/auth/token/refresh", {"refreshToken": token}), 200, "refresh")
        refresh_tokens.append(r.json()["refreshToken"])

    async def users_list(conn, o):
        path = getattr(conn, "next_page", None) or f"{api}/Users"
        r = o.expect(await conn.request("GET", path, headers=auth), 200, "list")
        nxt = r.json().get("next")
        if nxt:
            parts = urlsplit(nxt)
            conn.next_page = parts.path + ("?" + parts.query if parts.query else "")
        else:
            conn.next_page = None

    ids = fx["apiUserIds"]

    async def users_detail(conn, o):
        o.expect(await conn.request("GET", f"{api}/Users/{next_of(ids)}", headers=auth), 200, "detail")

    async def users_put(conn, o):
        i = rr["i"] = rr["i"] + 1
        uid = ids[i % len(ids)]
        o.expect(await conn.put_json(f"{api}/Users/{uid}", {"email": f"api{i % len(ids)}@bench.example"}, headers=auth), 200, "put")

    return {"empty": empty, "totp_api": totp_api, "password_api": password_api, "password_page": password_page,
            "email_api": email_api, "refresh": refresh, "users_list": users_list, "users_detail": users_detail,
            "users_put": users_put, "totp_page": totp_page, "password_totp_api": password_totp_api}


async def gatehouse_scenarios(runner: Runner, datasets: list[Dataset], api_ready: bool, peer: System, hash_only: System,
                              allauth: System) -> None:
    """Every scenario on every dataset, each one's legs interleaved (``Runner.measure``). The
    peer's trivial view and TOTP step run in the same groups as our empty view and TOTP step
    (A-B-C-D-D-C-B-A, with allauth), so the TOTP ratio to the peer comes from adjacent seconds too; so does the
    hash-only server's sign-in in the API password sign-in's group (``bench.hashonly``). allauth
    runs in the group of each scenario it has: both sign-ins, both TOTP steps and the refresh."""
    p = runner.p
    systems = [d.system for d in datasets]
    m = runner.measure
    # The order spaces the TOTP scenarios apart: a user's next code needs a later time step.
    # Every cheap scenario measures the empty view beside each of its legs (``baseline``); this
    # first group warms the servers and sets our empty view beside the peer's trivial view.
    await m(systems + [peer, allauth], "empty", "empty view", conc=p.cheap_conc, duration=p.cheap_s)
    if api_ready:
        await m(systems + [peer, allauth], "totp_api", "TOTP step (API)", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
        await m(systems + [hash_only, allauth], "password_api", "password sign-in (API)", conc=p.hash_conc, duration=p.hash_s,
                argon2=True)
    await m(systems + [allauth], "password_page", "password sign-in (page)", conc=p.hash_conc, duration=p.hash_s, argon2=True)
    if api_ready:
        # One emailed code per user at a time: the sink hands a code to the one request waiting for that address.
        email_conc = min(p.cheap_conc, *(len(d.fx["email"]) for d in datasets))
        await m(systems, "email_api", "email send+verify (API)", conc=email_conc, duration=p.cheap_s, baseline="empty",
                per_op_requests=2)
        await m(systems + [allauth], "refresh", "refresh + rotation", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
        await m(systems, "users_list", "Users API list page", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
        await m(systems, "users_detail", "Users API detail", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
        await m(systems, "users_put", "Users API PUT", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
    await m(systems + [allauth], "totp_page", "TOTP step (page)", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
    if api_ready:
        await storm(runner, datasets)
        await m(systems, "password_totp_api", "password + TOTP (API)", conc=p.hash_conc, duration=p.hash_s, argon2=True,
                per_op_requests=2)
        for d in datasets:
            d.system.results["rehash"] = await rehash_check(d)


STORM_LIMIT = 100  # the bench tenant's password_max_attempts


@dataclass
class StormSide:
    """One dataset's part of the storm: its accounts, what its server answered each of them,
    and the judged attempts (401) with the seconds they took, per kind (hot, spread)."""

    d: Dataset
    hot: list[str]
    spread: list[str]
    tallies: dict = field(default_factory=dict)  # user -> {status: count}
    judged: dict = field(default_factory=lambda: {"hot": 0, "spread": 0})
    seconds: dict = field(default_factory=lambda: {"hot": 0.0, "spread": 0.0})
    spread_at: int = 0

    def next_spread(self) -> str:
        self.spread_at += 1
        return self.spread[(self.spread_at - 1) % len(self.spread)]

    async def burst(self, runner: Runner, kind: str, pick, attempts: int) -> None:
        """``attempts`` wrong passwords, each for the account ``pick()`` names. The time counted
        runs to the last judged one: attempts refused once the account is locked cost no hash."""
        server, stamps = self.d.system.server, []
        api = f"/tenant/{TENANT}/v2/auth/login"

        async def op(conn, o):
            user = pick()
            r = o.record(await conn.post_json(api, {"username": user, "password": "wrong password"}))
            t = self.tallies.setdefault(user, {})
            t[r.status] = t.get(r.status, 0) + 1
            if r.status == 401:
                stamps.append(time.perf_counter())
            elif r.status != 429:
                o.fail(f"storm: HTTP {r.status}")

        t0 = time.perf_counter()
        res = await run_closed_loop(HOST, server.port, concurrency=runner.p.hash_conc, duration=120, op=op, max_ops=attempts,
                                    server_pids=server.worker_pids())
        self.judged[kind] += len(stamps)
        self.seconds[kind] += (max(stamps) - t0) if stamps else res.elapsed

    def result(self, bound: dict) -> dict:
        """The counters read back from the database against what the server answered."""
        hot, spread = self.hot, self.spread
        db = json.loads(run([PY, "-m", "bench.prepare", "counters", "--usernames", ",".join(hot + spread)],
                            env=self.d.env).strip().splitlines()[-1])
        lost = extra = past = 0
        for user in hot + spread:
            got = self.tallies.get(user, {}).get(401, 0)  # failures judged and answered
            counted = db.get(user, {}).get("failed", 0)  # failures the database holds
            lost += max(got - counted, 0)
            extra += max(counted - got, 0)
            if user in hot:
                past += max(got - STORM_LIMIT, 0)
        hot_rate, spread_rate = (self.judged[k] / self.seconds[k] if self.seconds[k] else 0.0 for k in ("hot", "spread"))
        out = {
            "scenario": "failed-sign-in storm",
            "limit": STORM_LIMIT,
            "hotRounds": len(hot),
            "hotAttempts": sum(sum(self.tallies.get(u, {}).values()) for u in hot),
            "hotJudged": self.judged["hot"],
            "hotRefused429": sum(self.tallies.get(u, {}).get(429, 0) for u in hot),
            "hotJudgedPerS": round(hot_rate, 1),
            "spreadAttempts": sum(sum(self.tallies.get(u, {}).values()) for u in spread),
            "spreadJudged": self.judged["spread"],
            "spreadJudgedPerS": round(spread_rate, 1),
            "hotOverSpread": round(hot_rate / spread_rate, 3) if spread_rate else None,
            "lostCounts": lost,
            "countsWithoutAnswer": extra,
            "attemptsPastLimit": past,
            "hotLocked": all(db.get(u, {}).get("locked") for u in hot),
            "hotCounters": [db.get(u, {}).get("failed") for u in hot],
            "spreadCounted": sum(db.get(u, {}).get("failed", 0) for u in spread),
            "bound": bound,
            "opsPerS": round(hot_rate, 1),
            "ratio": round(hot_rate / bound["opsPerS"], 3) if bound["opsPerS"] else None,
        }
        log(f"  {self.d.key:4s} storm: hot {hot_rate:.1f}/s vs spread {spread_rate:.1f}/s = {out['hotOverSpread']}; "
            f"lost {lost}, past limit {past}, counters {out['hotCounters']}")
        return out


async def storm(runner: Runner, datasets: list[Dataset]) -> None:
    """Wrong passwords: attempts on ONE account (limit 100) against as many spread over 100
    accounts (one each a round, never reaching the limit). Judged attempts (401) cost an Argon2 hash,
    refused ones (429, locked) do not. A lock held across the hash would halve the hot rate.

    In rounds: each round gives every dataset one hot account's attempts, then one share of
    the spread's; the datasets' order turns round each round (1k, 1M, 1M, 1k, ...), so hot ÷
    spread and 1M ÷ 1k both come from adjacent seconds, as the other scenarios' legs do."""
    p = runner.p
    sides = []
    for d in datasets:
        lay = d.seed["layout"]
        sides.append(StormSide(d, hot=[f"u{i:07d}" for i in range(*lay["hot"])][: p.hot_rounds],
                               spread=[f"u{i:07d}" for i in range(*lay["spread"])]))
    n_spread = p.hot_rounds * len(sides[0].spread) if not p.quick else STORM_LIMIT + 20  # each spread account once a round
    shares = [n_spread // p.hot_rounds + (1 if r < n_spread % p.hot_rounds else 0) for r in range(p.hot_rounds)]
    bound_rates = runner.bound_half()
    for r in range(p.hot_rounds):
        for side in (sides if r % 2 == 0 else reversed(sides)):
            await side.burst(runner, "hot", lambda u=side.hot[r]: u, STORM_LIMIT + 20)
            await side.burst(runner, "spread", side.next_spread, shares[r])
    bound = runner.bound.summary(bound_rates + runner.bound_half())
    for side in sides:
        side.d.system.results["storm"] = side.result(bound)


async def rehash_check(d: Dataset) -> dict:
    """A user stored with weaker Argon2 parameters signs in once; the stored hash must now carry the settings' parameters."""
    server, seed, env = d.system.server, d.seed, d.env
    user = f"u{seed['layout']['rehash'][0]:07d}"
    before = json.loads(run([PY, "-m", "bench.prepare", "hash-params", "--username", user], env=env).strip().splitlines()[-1])
    conn = Connection(HOST, server.port)
    r = await conn.post_json(f"/tenant/{TENANT}/v2/auth/login", {"username": user, "password": seed["password"]})
    conn.close()
    after = json.loads(run([PY, "-m", "bench.prepare", "hash-params", "--username", user], env=env).strip().splitlines()[-1])
    out = {"before": before["stored"], "after": after["stored"], "settings": after["settings"], "status": r.status,
           "upgraded": after["upgraded"] and not before["upgraded"]}
    log(f"  {d.key:4s} re-hash on sign-in: {before['stored']} -> {after['stored']} (upgraded: {out['upgraded']})")
    return out


def peer_ops(seed: dict, fx: dict, totp: Totp) -> dict:
    """The peer's operations (its own pages, same scheduling), as ``gatehouse_ops``."""
    login = "/account/login/"
    csrf = fx["csrf"]
    password = seed["password"]
    pwd_users = fx["pwd"]
    last: dict[str, int] = {}
    rr = {"i": 0}

    async def empty_like(conn, o):
        o.expect(await conn.request("GET", "/done/"), 200, "done")

    async def password_page(conn, o):
        rr["i"] += 1
        user = pwd_users[rr["i"] % len(pwd_users)]
        r = o.expect(await conn.post_form(login, {"csrfmiddlewaretoken": csrf, "login_view-current_step": "auth",
                                                  "auth-username": user, "auth-password": password}, cookies={"csrftoken": csrf}), 302, "auth step")
        if not r.headers.get("location", "").endswith("/done/"):
            o.fail(f"auth step: redirected to {r.headers.get('location')}")

    sessions = {u: list(keys) for u, keys in fx["totpPage"].items()}
    page_pool = TotpPool(list(sessions), last, left=lambda u: len(sessions[u]))

    async def totp_page(conn, o):
        user, step = page_pool.take()
        sid = sessions[user].pop()
        r = o.expect(await conn.post_form(login, {"csrfmiddlewaretoken": csrf, "login_view-current_step": "token", "token-otp_token": totp.code(step)},
                                          cookies={"csrftoken": csrf, "sessionid": sid}), 302, "token step")
        if not r.headers.get("location", "").endswith("/done/"):
            o.fail(f"token step: redirected to {r.headers.get('location')}")

    totp_page.pool = page_pool

    both_pool = TotpPool(fx["pwdTotp"], last)

    async def password_totp_page(conn, o):
        user, step = both_pool.take()
        r = o.expect(await conn.post_form(login, {"csrfmiddlewaretoken": csrf, "login_view-current_step": "auth",
                                                  "auth-username": user, "auth-password": password}, cookies={"csrftoken": csrf}), 200, "auth step")
        sid = r.cookies.get("sessionid")
        if not sid or b"token-otp_token" not in r.body:
            o.fail("auth step: no token step")
        r = o.expect(await conn.post_form(login, {"csrfmiddlewaretoken": csrf, "login_view-current_step": "token", "token-otp_token": totp.code(step)},
                                          cookies={"csrftoken": csrf, "sessionid": sid}), 302, "token step")

    password_totp_page.pool = both_pool

    return {"empty": empty_like, "totp_page": totp_page, "password_page": password_page, "password_totp_page": password_totp_page}


def allauth_ops(seed: dict, fx: dict, totp: Totp) -> dict:
    """allauth's operations (its pages and its headless "app" client, JWT tokens), as ``peer_ops``."""
    app = "/_allauth/app/v1"
    csrf, password = fx["csrf"], seed["password"]
    last: dict[str, int] = {}
    rr = {"i": 0}

    def next_pwd_user() -> str:
        rr["i"] += 1
        return fx["pwd"][rr["i"] % len(fx["pwd"])]

    def expect_done(o, r, what: str) -> None:
        if not r.headers.get("location", "").endswith("/done/"):
            o.fail(f"{what}: redirected to {r.headers.get('location')}")

    async def empty_like(conn, o):
        o.expect(await conn.request("GET", "/done/"), 200, "done")

    async def password_page(conn, o):
        r = o.expect(await conn.post_form("/accounts/login/", {"csrfmiddlewaretoken": csrf, "login": next_pwd_user(), "password": password},
                                          cookies={"csrftoken": csrf}), 302, "login page")
        expect_done(o, r, "login page")

    async def password_api(conn, o):
        r = o.expect(await conn.post_json(f"{app}/auth/login", {"username": next_pwd_user(), "password": password}), 200, "login")
        if not body_has(r, "refresh_token"):
            o.fail("login: no tokens")

    # Pending sign-ins (sessions waiting at the 2FA step), each handed out once.
    page_sessions = {u: list(keys) for u, keys in fx["totpPage"].items()}
    page_pool = TotpPool(list(page_sessions), last, left=lambda u: len(page_sessions[u]))

    async def totp_page(conn, o):
        user, step = page_pool.take()
        r = o.expect(await conn.post_form("/accounts/2fa/authenticate/", {"csrfmiddlewaretoken": csrf, "code": totp.code(step)},
                                          cookies={"csrftoken": csrf, "sessionid": page_sessions[user].pop()}), 302, "2fa page")
        expect_done(o, r, "2fa page")

    totp_page.pool = page_pool

    api_sessions = {u: list(keys) for u, keys in fx["totpApi"].items()}
    api_pool = TotpPool(list(api_sessions), last, left=lambda u: len(api_sessions[u]))

    async def totp_api(conn, o):
        user, step = api_pool.take()
        r = o.expect(await conn.post_json(f"{app}/auth/2fa/authenticate", {"code": totp.code(step)},
                                          headers={"X-Session-Token": api_sessions[user].pop()}), 200, "2fa")
        if not body_has(r, "refresh_token"):
            o.fail("2fa: no tokens")

    totp_api.pool = api_pool

    refresh_tokens = deque(fx["refresh"])  # one rotating chain per signed-in session

    async def refresh(conn, o):
        if not refresh_tokens:
            raise Exhausted()
        r = o.expect(await conn.post_json(f"{app}/tokens/refresh", {"refresh_token": refresh_tokens.popleft()}), 200, "refresh")
        refresh_tokens.append(r.json()["data"]["refresh_token"])

    return {"empty": empty_like, "password_page": password_page, "password_api": password_api, "totp_page": totp_page,
            "totp_api": totp_api, "refresh": refresh}


async def peer_scenarios(runner: Runner, peer: System) -> None:
    """The peer's scenarios that are not interleaved with ours (``gatehouse_scenarios`` ran
    its trivial view and its TOTP step, ``totp_page``, beside ours); for reference."""
    p, m, systems = runner.p, runner.measure, [peer]
    if "totp_page" not in peer.results:  # the API was not mounted: no interleaved TOTP group ran
        await m(systems, "totp_page", "TOTP step (page)", conc=p.cheap_conc, duration=p.cheap_s, baseline="empty")
    await m(systems, "password_page", "password sign-in (page)", conc=p.hash_conc, duration=p.hash_s, argon2=True)
    await m(systems, "password_totp_page", "password + TOTP (page)", conc=p.hash_conc, duration=p.hash_s, argon2=True,
            per_op_requests=2)


def api_available(env: dict) -> bool:
    """The REST API is mounted (accounts/api/urls.py and its route in config/urls.py)."""
    if not (ROOT / "accounts" / "api" / "urls.py").is_file():
        return False
    code = ("from django.urls import resolve; import django; django.setup(); "
            f"resolve('/tenant/{TENANT}/v2/auth/login'); resolve('/tenant/{TENANT}/v2/auth/token/refresh'); print('ok')")
    proc = subprocess.run([str(PY), "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    return proc.returncode == 0 and "ok" in proc.stdout


# --- orchestration ---------------------------------------------------------------------------

def machine_info(dbs: Databases) -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) // 1024
    except (OSError, AttributeError):
        pass
    versions = run([PY, "-c", "import django, gunicorn, argon2; print(django.get_version(), gunicorn.__version__, argon2.__version__)"],
                   env=os.environ.copy()).split()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memoryMiB": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": versions[0],
        "gunicorn": versions[1],
        "argon2Cffi": versions[2],
        "database": dbs.server_version(),
        "loadAverageAtStart": os.getloadavg(),
    }


def commit_latency_ms(dbs: Databases, url: str) -> float | None:
    """One durable commit (WAL fsync) on this machine: a sync worker idles that long per commit."""
    if not dbs.postgres:
        return None
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (x int)")
        t0 = time.perf_counter()
        for _ in range(100):
            conn.execute("INSERT INTO bench_commit_probe VALUES (1)")
        ms = (time.perf_counter() - t0) * 10
        conn.execute("DROP TABLE bench_commit_probe")
    return round(ms, 2)


def ensure_peer_venv() -> None:
    req = PEER / "requirements.txt"
    marker = PEER_VENV / ".installed"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text() == digest and PEER_PY.is_file():
        return
    log("creating the peer's venv (bench/peers/.venv) from PyPI")
    subprocess.run([sys.executable if not shutil.which("python3") else "python3", "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_PY), "-m", "pip", "install", "--quiet", "-r", str(req)], check=True)
    marker.write_text(digest)


def ensure_allauth_venv() -> Path:
    """The allauth peer's venv, by its own installer (``bench/peers/allauth/install.py``, stdlib only); returns its python."""
    spec = importlib.util.spec_from_file_location("allauth_install", ALLAUTH / "install.py")
    install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install)
    return install.ensure_venv(log)


def flush_redis() -> None:
    try:
        import redis

        redis.Redis(host=HOST, port=6379, db=REDIS_DB).flushdb()
    except Exception as exc:  # noqa: BLE001 - the bench still runs; throttles just start warm
        log(f"could not flush Redis db {REDIS_DB}: {exc}")


# key in latest.json -> (database and scratch-file name, users)
DATASETS = {"1k": ("small", 1_000), "1m": ("large", 1_000_000)}


def prepare_dataset(key: str, dbs: Databases, base_env: dict) -> Dataset:
    """A fresh copy of the migrated schema, seeded, with its SQL counts taken."""
    t0 = time.perf_counter()
    name, users = DATASETS[key]
    url = dbs.fresh(name, template="schema")
    # Each server its own cache keys: both run at once on the bench's one Redis db.
    env = {**base_env, "DATABASE_URL": url, "BENCH_CACHE_KEY_PREFIX": key}
    seed_file, q_file = DATA / f"{name}.seed.json", DATA / f"{name}.queries.json"
    log(f"{key}: seeding {users:,} users ({dbs.kind})")
    run([PY, "-m", "bench.prepare", "seed", "--users", users, "--out", seed_file], env=env)
    run([PY, "-m", "bench.prepare", "count-queries", "--seed", seed_file, "--out", q_file], env=env)
    return Dataset(key=key, name=name, env=env, seed=json.loads(seed_file.read_text()), queries=json.loads(q_file.read_text()),
                   commit_ms=commit_latency_ms(dbs, url), setup_s=time.perf_counter() - t0)


def mint_fixtures(d: Dataset) -> None:
    t0 = time.perf_counter()
    fx_file = DATA / f"{d.name}.fixtures.json"
    run([PY, "-m", "bench.prepare", "fixtures", "--seed", DATA / f"{d.name}.seed.json", "--out", fx_file], env=d.env)
    d.fx = json.loads(fx_file.read_text())
    d.setup_s += time.perf_counter() - t0


async def gatehouse(keys: list[str], dbs: Databases, runner: Runner, base_env: dict, totp: Totp, peer: System,
                    hash_only: System, allauth: Peer) -> dict:
    """Seed every dataset, start one server per dataset, and run each scenario on all of them,
    interleaved (``Runner.measure``): a ratio between datasets comes from adjacent minutes."""
    dbs.fresh("schema")  # migrations run once; every dataset starts as a copy of this empty schema
    run([PY, "manage.py", "migrate", "--noinput", "-v0"], env={**base_env, "DATABASE_URL": dbs.url_for("schema")})
    datasets = [prepare_dataset(key, dbs, base_env) for key in keys]
    dbs.drop("schema")
    # Fixtures last, right before the servers start: pending sign-ins (tokens and sessions)
    # expire after MFA_PENDING_SECONDS (10 min) and must outlive the scenarios of every dataset.
    for d in datasets:
        mint_fixtures(d)
    allauth_mint(allauth, totp)
    flush_redis()
    try:
        for d in datasets:
            ops = gatehouse_ops(runner, d.seed, d.fx, totp)
            d.system = System(d.key, Server(name=f"gatehouse-{d.name}", gunicorn=GUNICORN, app="config.wsgi:application", cwd=ROOT,
                                            env=d.env, workers=WORKERS), ops)
            await d.system.server.wait_ready("/bench/empty/")
            await warm(d.system.server, [("GET", "/bench/empty/"), ("GET", f"/tenant/{TENANT}/login/")])
        log(f"setup {', '.join(f'{d.key} {d.setup_s:.0f}s' for d in datasets)}; running scenarios"
            + (f" (legs 1k, 1M, 1M, 1k, {runner.p.leg_rounds} times)" if len(datasets) > 1 else ""))
        await gatehouse_scenarios(runner, datasets, api_available(datasets[0].env), peer, hash_only, allauth.system)
        rss = {d.key: d.system.server.peak_rss_kib() for d in datasets}
    finally:
        for d in datasets:
            if d.system is not None:
                d.system.server.stop()
    return {d.key: {"users": d.seed["users"], "seedSeconds": d.seed["seedSeconds"], "setupSeconds": round(d.setup_s, 1),
                    "scenarios": d.system.results, "commitLatencyMs": d.commit_ms, "peakRssKiBPerWorker": rss[d.key],
                    "queries": d.queries} for d in datasets}


@dataclass
class Peer:
    """The peer's database, fixtures and running server (``peer_start``), until ``peer_finish``."""

    system: System
    env: dict
    seed: dict
    fx: dict
    started: float


async def peer_start(dbs: Databases, base_env: dict, totp: Totp, users: int) -> Peer:
    """Seed the peer's database and start its server; it stays up (idle) beside Gatehouse's."""
    t0 = time.perf_counter()
    ensure_peer_venv()
    url = dbs.fresh("peer")
    env = {**base_env, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "peer_project.settings", "PYTHONPATH": str(PEER)}
    run([PEER_PY, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=PEER)
    seed_file, fx_file = DATA / "peer.seed.json", DATA / "peer.fixtures.json"
    run([PEER_PY, "prepare.py", "seed", "--users", users, "--secret", SECRET, "--password", PASSWORD, "--out", seed_file], env=env, cwd=PEER)
    run([PEER_PY, "prepare.py", "fixtures", "--seed", seed_file, "--out", fx_file], env=env, cwd=PEER)
    seed, fx = json.loads(seed_file.read_text()), json.loads(fx_file.read_text())
    server = Server(name="peer", gunicorn=PEER_VENV / "bin" / "gunicorn", app="peer_project.wsgi:application", cwd=PEER, env=env,
                    workers=WORKERS)
    # Its TOTP step runs in our "totp_api" group (its only interface is the page), and its
    # result is filed under its own name, "totp_page".
    peer = Peer(System("peer", server, peer_ops(seed, fx, totp), aliases={"totp_api": "totp_page"}), env, seed, fx, t0)
    try:
        await server.wait_ready("/done/")
        await warm(server, [("GET", "/done/"), ("GET", "/account/login/")])
    except BaseException:
        server.stop()
        raise
    return peer


async def peer_finish(runner: Runner, peer: Peer) -> dict:
    """The peer's remaining scenarios; then its server stops."""
    results = peer.system.results
    try:
        await peer_scenarios(runner, peer.system)
        rss = peer.system.server.peak_rss_kib()
    finally:
        peer.system.server.stop()
    versions = run([PEER_PY, "-c", "import importlib.metadata as m; print(m.version('django-two-factor-auth'), m.version('django-otp'))"],
                   env=peer.env, cwd=PEER).split()
    return {"users": peer.seed["users"], "scenarios": results, "peakRssKiBPerWorker": rss,
            "queries": {"pageRequest": peer.fx["pageRequestQueries"]},
            "versions": {"django-two-factor-auth": versions[0], "django-otp": versions[1]},
            "wallSeconds": round(time.perf_counter() - peer.started, 1)}


async def allauth_start(dbs: Databases, base_env: dict, totp: Totp, users: int) -> Peer:
    """The second peer (django-allauth, ``bench/peers/allauth``), as ``peer_start``."""
    t0 = time.perf_counter()
    py = ensure_allauth_venv()
    env = {**base_env, "DATABASE_URL": dbs.fresh("allauth"), "DJANGO_SETTINGS_MODULE": "allauth_project.settings", "PYTHONPATH": str(ALLAUTH),
           "ALLAUTH_PEER_REDIS_URL": f"redis://{HOST}:6379/{REDIS_DB}"}  # its keys are prefixed "allauth-peer"
    run([py, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ALLAUTH)
    seed_file = DATA / "allauth.seed.json"
    run([py, "prepare.py", "seed", "--users", users, "--secret", SECRET, "--password", PASSWORD, "--out", seed_file], env=env, cwd=ALLAUTH)
    server = Server(name="allauth", gunicorn=ALLAUTH_VENV / "bin" / "gunicorn", app="allauth_project.wsgi:application", cwd=ALLAUTH,
                    env=env, workers=WORKERS)
    # Its operations come with its fixtures (``allauth_mint``), right before Gatehouse's servers start.
    peer = Peer(System("allauth", server, {}), env, json.loads(seed_file.read_text()), {}, t0)
    try:
        await server.wait_ready("/done/")
        await warm(server, [("GET", "/done/"), ("GET", "/accounts/login/")])
    except BaseException:
        server.stop()
        raise
    return peer


def allauth_mint(peer: Peer, totp: Totp) -> None:
    """allauth's pending sign-ins (they live 15 min: minted with Gatehouse's, after every
    dataset is seeded), its signed-in sessions for the refresh, and so its operations."""
    fx_file = DATA / "allauth.fixtures.json"
    run([ALLAUTH_VENV / "bin" / "python", "prepare.py", "fixtures", "--seed", DATA / "allauth.seed.json", "--out", fx_file],
        env=peer.env, cwd=ALLAUTH)
    peer.fx = json.loads(fx_file.read_text())
    peer.system.ops = allauth_ops(peer.seed, peer.fx, totp)


def allauth_finish(peer: Peer) -> dict:
    try:
        rss = peer.system.server.peak_rss_kib()
    finally:
        peer.system.server.stop()
    version = run([ALLAUTH_VENV / "bin" / "python", "-c", "import importlib.metadata as m; print(m.version('django-allauth'))"],
                  env=peer.env, cwd=ALLAUTH).strip()
    return {"users": peer.seed["users"], "scenarios": peer.system.results, "peakRssKiBPerWorker": rss,
            "authenticators": peer.seed["authenticators"], "versions": {"django-allauth": version},
            "wallSeconds": round(time.perf_counter() - peer.started, 1)}


async def hash_only_start(base_env: dict) -> System:
    """The reference for the password sign-in (``bench.hashonly``): the Argon2 verify alone,
    served by the same gunicorn as Gatehouse; it stays up (idle) beside ours."""
    server = Server(name="hashonly", gunicorn=GUNICORN, app="bench.hashonly:serve()", cwd=ROOT, env=base_env, workers=WORKERS)
    body = {"username": "u0000001", "password": PASSWORD}

    async def password_api(conn, o):
        o.expect(await conn.post_json("/login", body), 200, "login")

    try:
        await server.wait_ready("/")
        await warm(server, [("GET", "/")])
    except BaseException:
        server.stop()
        raise
    return System("hash only", server, {"password_api": password_api})


def hash_only_finish(system: System) -> dict:
    try:
        rss = system.server.peak_rss_kib()
    finally:
        system.server.stop()
    return {"scenarios": system.results, "peakRssKiBPerWorker": rss}


async def warm(server: Server, requests: list[tuple[str, str]]) -> None:
    conn = Connection(HOST, server.port)
    for _ in range(10):
        for method, path in requests:
            await conn.request(method, path)
    conn.close()


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery staple 42"


async def main_async(profile: Profile) -> dict:
    started = time.perf_counter()
    DATA.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    dbs = Databases(os.environ.get("DATABASE_URL"))
    params = params_from_env()  # the same Argon2 parameters as the reference server reads
    workers = WORKERS
    sink = MailSink()
    smtp_port = await sink.start()
    base_env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
        "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CACHE_URL": f"redis://{HOST}:6379/{REDIS_DB}",
        "EMAIL_URL": f"smtp://{HOST}:{smtp_port}",
        "THROTTLE_AUTH_RATE": "100000000/s",  # the bench is one client address: it measures the server, not the throttle's refusals
        "ACCESS_TOKEN_SECONDS": "3600",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BENCH_STATIC_ROOT": str(DATA / "static"),
        "BENCH_PASSWORD": PASSWORD,
        "ARGON2_MEMORY_KIB": str(params[0]),
        "ARGON2_TIME_COST": str(params[1]),
        "ARGON2_PARALLELISM": str(params[2]),
        "PYTHONPATH": str(ROOT),
    }
    info = machine_info(dbs)
    log(f"{profile.name} run on {info['cores']} cores ({info['cpu']}), {info['database']}, Argon2id m={params[0]} t={params[1]} p={params[2]}")
    run([PY, "manage.py", "collectstatic", "--noinput", "-v0"], env={**base_env, "DATABASE_URL": dbs.url_for("small")})
    bound = Argon2Bound(params, CORES)  # one process per core
    runner = Runner(profile, bound, sink)
    totp = Totp(SECRET)
    keys = ["1k", "1m"] if dbs.postgres and not profile.quick else ["1k"]
    interleaved = len(keys) > 1
    datasets: dict = {}
    peer: dict | None = None
    peer_run: Peer | None = None
    allauth_run: Peer | None = None
    allauth: dict | None = None
    hash_only: System | None = None
    hash_only_result: dict | None = None
    try:
        log("peer: django-two-factor-auth + django-otp, 1,000 users (its server up beside ours)")
        peer_run = await peer_start(dbs, base_env, totp, 1_000)
        log("allauth: django-allauth (account, mfa, headless with JWT), 1,000 users (its server up beside ours)")
        allauth_run = await allauth_start(dbs, base_env, totp, 1_000)
        hash_only = await hash_only_start(base_env)
        datasets = await gatehouse(keys, dbs, runner, base_env, totp, peer_run.system, hash_only, allauth_run)
        hash_only_result = hash_only_finish(hash_only)
        allauth = allauth_finish(allauth_run)
        log("peer: its remaining scenarios")
        peer = await peer_finish(runner, peer_run)
    finally:
        for other in (peer_run, allauth_run):
            if other is not None:
                other.system.server.stop()
        if hash_only is not None:
            hash_only.server.stop()
        bound.close()
        sink.server.close()
        if dbs.postgres:  # a million users take room: the next run seeds afresh anyway
            for name in ("small", "large", "schema", "peer", "allauth"):
                dbs.drop(name)
    result = {
        "generatedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": profile.name,
        "machine": info,
        "parameters": {
            "argon2id": {"memoryKiB": params[0], "timeCost": params[1], "parallelism": params[2]},
            "server": f"gunicorn, {workers} sync workers" + (" (one per core)" if workers == CORES else f" on {CORES} cores (BENCH_WORKERS)")
                      + (f", with {' '.join(GUNICORN_ARGS)} (BENCH_GUNICORN_ARGS)" if GUNICORN_ARGS else "")
                      + f", DEBUG=false, Redis cache db {REDIS_DB}, database sessions"
                      + ("; one server per dataset, both up, one under load at a time" if interleaved else ""),
            "client": "bench/httpload.py: one asyncio process, HTTP/1.1, "
                      + ("connections kept alive while the server allows" if GUNICORN_ARGS else "new connection per request (sync workers close them)"),
            "concurrency": {"passwordBound": profile.hash_conc, "cheap": profile.cheap_conc},
            "secondsPerScenario": {"passwordBound": profile.hash_s, "cheap": profile.cheap_s, "argon2Bound": profile.bound_s},
            "interleaving": (f"each scenario runs on 1k, 1M, 1M, 1k users back to back (A-B-B-A), {profile.leg_rounds} times, "
                             f"each leg 1/{2 * profile.leg_rounds} of its seconds, so each 1M/1k ratio comes from adjacent seconds "
                             "and a linear drift cancels; a dataset's rate is its legs' mean rate, percentiles from all their "
                             "samples; a TOTP scenario's legs stop at an equal share of "
                             "the codes its users can pass in the group (RFC 6238: one per user and step); the peer's trivial view "
                             "and TOTP step run in the empty-view and TOTP groups (1k, 1M, peer, peer, 1M, 1k, and again), allauth in the "
                             "group of each scenario it has; the storm runs in "
                             f"rounds ({profile.hot_rounds}), each a hot account's attempts and a share of the spread's on each dataset, "
                             "the datasets' order turning round each round (1k, 1M, 1M, 1k, ...); the re-hash check runs on 1k, then on 1M") if interleaved else
                            "the peer's trivial view and TOTP step run interleaved with ours (1k, peer, peer, 1k); allauth in the group of "
                            "each scenario it has (empty view, both sign-ins, both TOTP steps, refresh)",
            "argon2Bound": {"windows": profile.bound_windows, "windowSeconds": profile.bound_window_s, "processes": CORES,
                            "gapWindows": profile.bound_gap_windows,
                            "method": f"{profile.bound_gap_windows} short windows before each leg of a password-bound scenario and "
                                      "after its last; a leg's bound is the median of the windows on both sides of it, a system's "
                                      "the mean of its legs' bounds (the storm: the median of the windows, half right before and "
                                      "half right after it)"},
            "database": dbs.kind,
            "datasets": {k: v["users"] for k, v in datasets.items()},
        },
        "datasets": datasets,
        "peer": peer,
        "allauth": allauth,
        "hashOnly": hash_only_result,
        "wallSeconds": round(time.perf_counter() - started, 1),
    }
    result["doneWhen"] = report.done_when(result)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 users only, short scenarios (make bench-quick)")
    args = parser.parse_args(argv)
    profile = Profile(args.quick)
    result = asyncio.run(main_async(profile))
    report.write(result, RESULTS)
    print(report.table(result))
    log(f"done in {result['wallSeconds']:.0f}s; wrote {RESULTS / 'latest.json'}, latest.md, latest.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())

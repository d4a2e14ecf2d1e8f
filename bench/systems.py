"""The systems under test, set up and started: Gatehouse's datasets (1,000 and 1,000,000 users),
the hash alone behind the same server, the two peers, and Gatehouse on other serving models.

Every system gets a fresh database per run (a copy of the migrated schema for Gatehouse, its own
migrations for a peer), seeded in bulk; the row counts are read back and reported."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import scenarios
from bench.common import (ALLAUTH, DATA, HOST, PEER, PY, REDIS_DB, ROOT, TENANT, Databases, Server, log, run, warm)
from bench.cpu import Probe
from bench.legs import System
from bench.totp import Totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "correct horse battery staple 42"
# key in latest.json -> (database and scratch-file name, users)
DATASETS = {"1k": ("small", 1_000), "1m": ("large", 1_000_000)}
BENCH_EXTRAS = ROOT / "bench" / "requirements.txt"  # granian, for the serving-model comparison


def ensure_venv(directory: Path, requirements: Path, *, python: str | None = None) -> Path:
    """A venv at ``directory/.venv`` holding exactly ``requirements`` (a SHA-256 marker); returns its bin/."""
    venv = directory / ".venv"
    marker = venv / ".installed"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if not (marker.is_file() and marker.read_text() == digest and (venv / "bin" / "python").is_file()):
        log(f"installing {requirements.relative_to(ROOT)} into {venv.relative_to(ROOT)} (pip, PyPI)")
        subprocess.run([python or shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-qq", "-r", str(requirements)], check=True)
        marker.write_text(digest)
    return venv


def ensure_bench_extras() -> None:
    """granian into the project's venv (it serves Gatehouse's own code), once per pin."""
    marker = ROOT / ".venv" / ".bench-extras"
    digest = hashlib.sha256(BENCH_EXTRAS.read_bytes()).hexdigest()
    if marker.is_file() and marker.read_text() == digest:
        return
    log("installing bench/requirements.txt (granian) into .venv")
    subprocess.run([str(PY), "-m", "pip", "install", "-qq", "-r", str(BENCH_EXTRAS)], check=True)
    marker.write_text(digest)


def machine_info(dbs: Databases) -> dict:
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.+)", f.read())
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) // 1024
    versions = run([PY, "-c", "import django, gunicorn, argon2, granian; print(django.get_version(), gunicorn.__version__, "
                    "argon2.__version__, granian.__version__)"], env=os.environ.copy()).split()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()
    return {"cpu": m.group(1).strip() if m else "unknown", "cores": os.cpu_count(), "memoryMiB": mem,
            "os": platform.platform(), "python": platform.python_version(), "django": versions[0], "gunicorn": versions[1],
            "argon2Cffi": versions[2], "granian": versions[3], "wrk": wrk[1] if len(wrk) > 1 else "?",
            "database": dbs.server_version(), "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()]}


def flush_redis() -> None:
    try:
        import redis

        redis.Redis(host=HOST, port=6379, db=REDIS_DB).flushdb()
    except Exception as exc:  # noqa: BLE001 - the bench still runs; throttles just start warm
        log(f"could not flush Redis db {REDIS_DB}: {exc}")


def row_counts(dbs: Databases, name: str, tables: list[str]) -> dict:
    """Rows per table of a system's database, as the run left them seeded (before any scenario)."""
    if not dbs.postgres:
        import sqlite3

        conn = sqlite3.connect(DATA / f"{name}.sqlite3")
        out = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        conn.close()
        return out
    import psycopg

    with psycopg.connect(dbs.url_for(name)) as conn:
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


GATEHOUSE_TABLES = ["tenants_tenant", "accounts_user", "mfa_totpdevice", "accounts_refreshtokenchain", "django_session"]
PEER_TABLES = {"peer": ["auth_user", "otp_totp_totpdevice", "django_session"],
               "allauth": ["auth_user", "mfa_authenticator", "django_session"]}


@dataclass
class Dataset:
    """One Gatehouse database (1,000 or 1,000,000 users) and, once its server runs, its System."""

    key: str
    name: str
    env: dict
    seed: dict
    queries: dict
    setup_s: float
    rows: dict = field(default_factory=dict)
    fx: dict = field(default_factory=dict)
    system: System | None = None
    extra: list = field(default_factory=list)  # the same dataset served another way (gthread, granian)


def prepare_datasets(keys: list[str], dbs: Databases, base_env: dict) -> list[Dataset]:
    """Migrations once into <prefix>_schema; every dataset a fresh copy of it, seeded in bulk."""
    dbs.fresh("schema")
    run([PY, "manage.py", "migrate", "--noinput", "-v0"], env={**base_env, "DATABASE_URL": dbs.url_for("schema")})
    out = []
    for key in keys:
        t0 = time.perf_counter()
        name, users = DATASETS[key]
        url = dbs.fresh(name, template="schema")
        env = {**base_env, "DATABASE_URL": url, "BENCH_CACHE_KEY_PREFIX": key}  # both servers share one Redis db
        seed_file, q_file = DATA / f"{name}.seed.json", DATA / f"{name}.queries.json"
        log(f"{key}: seeding {users:,} users ({dbs.kind})")
        run([PY, "-m", "bench.prepare", "seed", "--users", users, "--out", seed_file], env=env)
        run([PY, "-m", "bench.prepare", "count-queries", "--seed", seed_file, "--out", q_file], env=env)
        out.append(Dataset(key=key, name=name, env=env, seed=json.loads(seed_file.read_text()),
                           queries=json.loads(q_file.read_text()), setup_s=time.perf_counter() - t0))
    dbs.drop("schema")
    return out


def mint(d: Dataset, dbs: Databases) -> None:
    """Pending sign-ins, refresh tokens, the admin's token: right before the servers start
    (a pending sign-in lives 10 minutes). Row counts are read after it."""
    fx_file = DATA / f"{d.name}.fixtures.json"
    run([PY, "-m", "bench.prepare", "fixtures", "--seed", DATA / f"{d.name}.seed.json", "--out", fx_file], env=d.env)
    d.fx = json.loads(fx_file.read_text())
    d.rows = row_counts(dbs, d.name, GATEHOUSE_TABLES)


def gatehouse_probe(server: Server, dbs: Databases, name: str) -> Probe:
    return Probe(server.pids, dbs.db_name(name) if dbs.postgres else None, redis=True)


async def start_gatehouse(d: Dataset, dbs: Databases, totp: Totp, sink, *, serving_models: list[str]) -> None:
    """Gatehouse on the dataset, the production way (sync); and, for the serving-model comparison,
    the same dataset served by each of ``serving_models`` (its refresh chains split between them)."""
    chains = [d.fx["refresh"][i::1 + len(serving_models)] for i in range(1 + len(serving_models))]
    for i, serving in enumerate(["sync", *serving_models]):
        label = d.key if serving == "sync" else f"{d.key} {serving}"
        # gunicorn reads Gatehouse's gunicorn.conf.py from ROOT (settings checked at start, metrics of all
        # workers in one directory); granian does not, so every server gets its own metrics directory here,
        # and all of them do the same work per request.
        metrics = DATA / f"metrics-{d.name}-{serving}"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
        server = Server(name=f"gatehouse-{d.name}-{serving}", venv=ROOT / ".venv", app="config.wsgi:application", cwd=ROOT,
                        env={**d.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}, serving=serving)
        await server.wait_ready("/bench/empty/")
        await warm(server, [("GET", "/bench/empty/"), ("GET", f"/tenant/{TENANT}/login/")])
        host = f"{HOST}:{server.port}"
        system = System(label, server, scenarios.gatehouse(host, d.seed, d.fx, totp, sink, refresh_tokens=chains[i]),
                        gatehouse_probe(server, dbs, d.name))
        if serving == "sync":
            d.system = system
        else:
            d.extra.append(system)


async def start_hash_only(base_env: dict) -> System:
    # started from bench/, so gunicorn does not read Gatehouse's gunicorn.conf.py: nothing but the hash
    server = Server(name="hashonly", venv=ROOT / ".venv", app="bench.hashonly:serve()", cwd=ROOT / "bench", env=base_env)
    await server.wait_ready("/")
    await warm(server, [("GET", "/")])
    return System("hash only", server, scenarios.hash_only(f"{HOST}:{server.port}", PASSWORD), Probe(server.pids, None, redis=False))


@dataclass
class Peer:
    """A peer (``peer``: django-two-factor-auth, ``allauth``: django-allauth): its venv, database,
    seed and fixtures, and its server once started."""

    key: str
    directory: Path
    settings: str
    env: dict = field(default_factory=dict)
    seed: dict = field(default_factory=dict)
    fx: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    system: System | None = None

    @property
    def venv(self) -> Path:
        return self.directory / ".venv"

    def prepare(self, dbs: Databases, base_env: dict, users: int) -> None:
        ensure_venv(self.directory, self.directory / "requirements.txt")
        self.env = {**base_env, "DATABASE_URL": dbs.fresh(self.key), "DJANGO_SETTINGS_MODULE": self.settings,
                    "PYTHONPATH": f"{self.directory}:{PEER}", "ALLAUTH_PEER_REDIS_URL": f"redis://{HOST}:6379/{REDIS_DB}"}
        py = self.venv / "bin" / "python"
        run([py, "manage.py", "migrate", "--noinput", "-v0"], env=self.env, cwd=self.directory)
        seed_file = DATA / f"{self.key}.seed.json"
        run([py, "prepare.py", "seed", "--users", users, "--secret", SECRET, "--password", PASSWORD, "--out", seed_file],
            env=self.env, cwd=self.directory)
        self.seed = json.loads(seed_file.read_text())

    def mint(self, dbs: Databases) -> None:
        fx_file = DATA / f"{self.key}.fixtures.json"
        run([self.venv / "bin" / "python", "prepare.py", "fixtures", "--seed", DATA / f"{self.key}.seed.json", "--out", fx_file],
            env=self.env, cwd=self.directory)
        self.fx = json.loads(fx_file.read_text())
        self.rows = row_counts(dbs, self.key, PEER_TABLES[self.key])

    async def start(self, dbs: Databases, totp: Totp) -> None:
        project = self.settings.split(".")[0]
        server = Server(name=self.key, venv=self.venv, app=f"{project}.wsgi:application", cwd=self.directory, env=self.env)
        await server.wait_ready("/done/")
        host = f"{HOST}:{server.port}"
        if self.key == "peer":
            await warm(server, [("GET", "/done/"), ("GET", "/account/login/")])
            ops, label, redis = scenarios.two_factor(host, self.seed, self.fx, totp), "two-factor", False
        else:
            await warm(server, [("GET", "/done/"), ("GET", "/accounts/login/")])
            ops, label, redis = scenarios.allauth(host, self.seed, self.fx, totp), "allauth", True
        self.system = System(label, server, ops, Probe(server.pids, dbs.db_name(self.key) if dbs.postgres else None, redis=redis))

    def versions(self, packages: list[str]) -> dict:
        code = "import importlib.metadata as m, sys; print(' '.join(m.version(p) for p in sys.argv[1:]))"
        got = run([self.venv / "bin" / "python", "-c", code, *packages], env=self.env, cwd=self.directory).split()
        return dict(zip(packages, got))


PEERS = [Peer("peer", PEER, "peer_project.settings"), Peer("allauth", ALLAUTH, "allauth_project.settings")]

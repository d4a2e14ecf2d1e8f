"""CPU seconds per leg, summed over every process that serves it, read from /proc.

A leg's processes: the server (master and workers), the PostgreSQL backends connected to the
leg's database (found by ``pg_stat_activity``; Django keeps them open, ``CONN_MAX_AGE``), the
Redis server, and the client (the bench process itself and the ``wrk`` it runs). CPU per
operation is their CPU seconds over the operations that succeeded. Unlike throughput, it
hardly moves when another program takes the cores for a while: what a request costs stays
what it costs, only the wall clock around it stretches.
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> float:
    """utime + stime, in seconds, from the text of ``/proc/<pid>/stat`` (the command name in
    parentheses may hold spaces and parentheses itself: fields count from the last ')')."""
    fields = text.rsplit(")", 1)[1].split()
    # after the name: state(0) ppid(1) ... utime(11) stime(12), as proc(5) numbers them 14 and 15
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_of(pids) -> dict[int, float]:
    """Each live process's CPU seconds; a process gone meanwhile is left out."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                out[pid] = parse_stat(f.read())
        except (OSError, IndexError, ValueError):
            pass
    return out


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings: a process that appeared in between counts from 0."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for (``wrk``)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def own_cpu() -> float:
    return time.process_time()


def median_spread(values: list[float]) -> dict:
    """The median of the groups' values and their spread (min, max)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


@dataclass
class Probe:
    """Where a leg's processes are found: the server's pids, the PostgreSQL database its
    backends serve (None: no database, or SQLite), and whether Redis serves it."""

    server_pids: callable
    database: str | None = None
    redis: bool = True


@dataclass
class Meter:
    """One reading before a leg and one after it (``start`` / ``stop``), by kind of process."""

    probe: Probe
    pg: object = None  # bench.cpu.Postgres, or None
    redis_pid: int | None = None
    before: dict = field(default_factory=dict)
    client0: float = 0.0

    def _pids(self) -> dict[str, list[int]]:
        out = {"server": self.probe.server_pids()}
        out["database"] = self.pg.backends(self.probe.database) if self.pg and self.probe.database else []
        out["redis"] = [self.redis_pid] if self.probe.redis and self.redis_pid else []
        return out

    def start(self) -> None:
        self.before = {kind: cpu_of(pids) for kind, pids in self._pids().items()}
        self.client0 = own_cpu() + children_cpu()

    def stop(self) -> dict[str, float]:
        """CPU seconds by kind (server, database, redis, client) since ``start``."""
        after = {kind: cpu_of(pids) for kind, pids in self._pids().items()}
        out = {kind: spent(self.before.get(kind, {}), after[kind]) for kind in after}
        out["client"] = own_cpu() + children_cpu() - self.client0
        return out


class Postgres:
    """The backends serving a database, from ``pg_stat_activity`` (one admin connection to the
    server's ``postgres`` database, which serves no leg)."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def backends(self, database: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.conn.close()


def redis_pid(db: int) -> int | None:
    """The Redis server's pid when it runs on this machine (INFO's process_id), else None."""
    try:
        import redis

        pid = int(redis.Redis(host="127.0.0.1", port=6379, db=db).info("server")["process_id"])
        return pid if os.path.exists(f"/proc/{pid}/stat") else None
    except Exception:  # noqa: BLE001 - no Redis: its CPU is not counted, and the report says so
        return None

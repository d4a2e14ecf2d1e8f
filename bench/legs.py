"""Legs and groups: how a scenario is measured on several systems side by side.

A group runs the scenario once on each system (a leg each), back to back; the next group runs
them in the reverse order (A-B-C, C-B-A, A-B-C, ...), so each system's legs sit around the
same mean time. Every leg reads the CPU of all its processes (bench/cpu.py) before and after;
a ratio between two systems is taken within each group, from CPU per operation, and the
report gives the median of the groups and their spread (min-max). Throughput (operations per
second of the leg's wall time) is reported beside it.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import HOST, Server, log
from bench.cpu import Meter, Postgres, Probe, median_spread
from bench.httpload import Result, run_closed_loop
from bench.loadwrk import run_wrk
from bench.scenarios import PyOp, WrkOp


@dataclass(frozen=True)
class LegSize:
    """The least a leg runs: ``seconds`` and ``ops`` answers, whichever ends later (a wrk leg;
    the bench's own client runs ``seconds``). A TOTP leg is its list of single-use sign-ins."""

    seconds: int
    ops: int


@dataclass
class System:
    """A server under test and its scenarios (``bench.scenarios``)."""

    label: str  # "1k", "1m", "hash only", "two-factor", "allauth", "1k gthread", "1k granian"
    server: Server
    ops: dict
    probe: Probe
    results: dict = field(default_factory=dict)  # scenario key -> summary (``summarize``)


@dataclass
class Leg:
    ops: int
    errors: int
    elapsed: float
    cpu: dict  # CPU seconds by kind of process: server, database, redis, client
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    sample: str = ""
    ended_early: bool = False

    @property
    def cpu_ms_per_op(self) -> float | None:
        return 1000 * sum(self.cpu.values()) / self.ops if self.ops else None

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed else 0.0


def summarize(label: str, legs: list[Leg], conc: int, requests_per_op: int, client: str) -> dict:
    """One system's figures for one scenario: per group (one leg each) and their median."""
    per_op = [leg.cpu_ms_per_op for leg in legs]
    rates = [leg.rate for leg in legs if leg.ops]  # a leg with nothing left to do (the email users spent) has no rate
    ops = sum(leg.ops for leg in legs)
    kinds = sorted({k for leg in legs for k in leg.cpu})
    return {
        "scenario": label,
        "client": client,
        "concurrency": conc,
        "requestsPerOp": requests_per_op,
        "ops": ops,
        "errors": sum(leg.errors for leg in legs),
        "errorSample": next((leg.sample for leg in legs if leg.sample), ""),
        "endedEarly": any(leg.ended_early for leg in legs),
        "cpuMsPerOp": {k: (round(v, 3) if v is not None else None) for k, v in median_spread(per_op).items() if k != "n"},
        "cpuMsPerOpByGroup": [round(v, 3) if v is not None else None for v in per_op],
        # where a leg's CPU went, over all its legs, in ms per operation
        "cpuMsPerOpByProcess": {k: round(1000 * sum(leg.cpu.get(k, 0.0) for leg in legs) / ops, 3) if ops else None for k in kinds},
        "opsPerS": round(statistics.median(rates), 1) if rates else 0.0,
        "opsPerSByGroup": [round(leg.rate, 1) for leg in legs],
        "p50Ms": round(statistics.median(leg.p50_ms for leg in legs if leg.ops), 1) if rates else None,
        "p99Ms": round(max(leg.p99_ms for leg in legs if leg.ops), 1) if rates else None,
    }


class Runner:
    def __init__(self, *, groups: int, pg: Postgres | None, redis_pid: int | None, scratch: Path):
        self.groups, self.pg, self.redis_pid, self.scratch = groups, pg, redis_pid, scratch

    async def leg(self, system: System, key: str, *, conc: int, size: LegSize, legs_left: int) -> Leg:
        op = system.ops[key]
        meter = Meter(system.probe, self.pg, self.redis_pid)
        if isinstance(op, WrkOp):
            plan = op.plan(size, legs_left)
            meter.start()
            r = await run_wrk(plan, host=HOST, port=system.server.port, concurrency=conc, spec_file=self.scratch / "wrk-spec.lua")
            cpu = meter.stop()
            if op.done:
                op.done(r)
            return Leg(r.ops, r.errors, r.elapsed, cpu, r.p50_ms, r.p99_ms, r.sample)
        assert isinstance(op, PyOp)
        cap = op.cap(size.seconds * legs_left + 5, legs_left) if op.cap else None
        meter.start()
        res: Result = await run_closed_loop(HOST, system.server.port, concurrency=conc, duration=size.seconds, op=op.op,
                                            max_ops=max(cap, 1) if cap is not None else None)
        cpu = meter.stop()
        return Leg(res.ops, res.errors, res.elapsed, cpu, res.pct(0.5) * 1000, res.pct(0.99) * 1000,
                   (res.error_samples or [""])[0], res.exhausted)

    async def group(self, systems: list[System], key: str, label: str, *, conc: int, size: LegSize,
                    requests_per_op: int = 1) -> None:
        """``self.groups`` groups of one leg per system, the order turning round each group."""
        legs: dict[str, list[Leg]] = {s.label: [] for s in systems}
        for g in range(self.groups):
            for system in (systems if g % 2 == 0 else list(reversed(systems))):
                legs[system.label].append(await self.leg(system, key, conc=conc, size=size, legs_left=self.groups - g))
        for system in systems:
            client = "wrk" if isinstance(system.ops[key], WrkOp) else "bench/httpload.py"
            out = summarize(label, legs[system.label], conc, requests_per_op, client)
            system.results[key] = out
            cpu = out["cpuMsPerOp"]
            log(f"  {system.label:11s} {label:26s} {out['opsPerS']:8.1f} ops/s  cpu/op {cpu['median'] or 0:7.2f} ms "
                f"({cpu['min'] or 0:.2f}-{cpu['max'] or 0:.2f})  err {out['errors']}" + (f"  [{out['errorSample'][:80]}]" if out['errors'] else ""))

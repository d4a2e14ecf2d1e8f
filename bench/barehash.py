"""The bare hash, for reference: Argon2id verifies in one process per core, no server at all.

Each process verifies one hash back to back for a short window; the figures are verifies per
second (all processes) and CPU ms per verify. bench/hashonly.py serves the same verify over
HTTP: that, not this, is the bound a password sign-in is judged against."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import statistics
import time

PASSWORD = "correct horse battery staple 42"


def _window(params: tuple[int, int, int], seconds: float) -> tuple[int, float, float]:
    from argon2 import PasswordHasher, Type

    m, t, p = params
    hasher = PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=Type.ID)
    encoded = hasher.hash(PASSWORD)
    hasher.verify(encoded, PASSWORD)  # warm
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        hasher.verify(encoded, PASSWORD)
        n += 1
    return n, time.perf_counter() - t0, time.process_time() - c0


class BareHash:
    def __init__(self, params: tuple[int, int, int], processes: int):
        self.params, self.processes = params, processes
        self.pool = concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
        list(self.pool.map(_window, [params] * processes, [0.2] * processes))  # start and warm the processes
        self.windows: list[tuple[float, float]] = []  # (verifies/s over all processes, CPU ms per verify)

    def window(self, seconds: float) -> None:
        got = list(self.pool.map(_window, [self.params] * self.processes, [seconds] * self.processes))
        n = sum(g[0] for g in got)
        self.windows.append((sum(g[0] / g[1] for g in got), 1000 * sum(g[2] for g in got) / n if n else 0.0))

    def summary(self) -> dict:
        rates, cpu = [w[0] for w in self.windows], [w[1] for w in self.windows]
        return {"processes": self.processes, "windows": len(self.windows),
                "opsPerS": round(statistics.median(rates), 1) if rates else None,
                "opsPerSRange": [round(min(rates), 1), round(max(rates), 1)] if rates else None,
                "cpuMsPerOp": round(statistics.median(cpu), 2) if cpu else None,
                "cpuMsPerOpRange": [round(min(cpu), 2), round(max(cpu), 2)] if cpu else None}

    def close(self) -> None:
        self.pool.shutdown()

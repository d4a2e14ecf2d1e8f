"""The failed-sign-in storm and the re-hash check: correctness under load, read back from the database.

The storm: wrong passwords on ONE account (limit 100) against as many spread over 100
accounts. Judged attempts (401) cost an Argon2 hash, refused ones (429, locked) do not; a lock
held across the hash would halve the hot rate. Counters are read back from the database:
none lost, none past the limit. It runs with the bench's own client, which tallies every
answer per account."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from bench.common import HOST, PY, TENANT, log, run
from bench.httpload import Connection, run_closed_loop

STORM_LIMIT = 100  # the bench tenant's password_max_attempts


@dataclass
class StormSide:
    """One dataset's part of the storm: its accounts, what its server answered each of them,
    and the judged attempts (401) with the seconds they took, per kind (hot, spread)."""

    d: object  # bench.systems.Dataset
    hot: list[str]
    spread: list[str]
    tallies: dict = field(default_factory=dict)  # user -> {status: count}
    judged: dict = field(default_factory=lambda: {"hot": 0, "spread": 0})
    seconds: dict = field(default_factory=lambda: {"hot": 0.0, "spread": 0.0})
    spread_at: int = 0

    def next_spread(self) -> str:
        self.spread_at += 1
        return self.spread[(self.spread_at - 1) % len(self.spread)]

    async def burst(self, conc: int, kind: str, pick, attempts: int) -> None:
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
        res = await run_closed_loop(HOST, server.port, concurrency=conc, duration=120, op=op, max_ops=attempts)
        self.judged[kind] += len(stamps)
        self.seconds[kind] += (max(stamps) - t0) if stamps else res.elapsed

    def result(self) -> dict:
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
            "opsPerS": round(hot_rate, 1),
        }
        log(f"  {self.d.key:4s} storm: hot {hot_rate:.1f}/s vs spread {spread_rate:.1f}/s = {out['hotOverSpread']}; "
            f"lost {lost}, past limit {past}, counters {out['hotCounters']}")
        return out


async def storm(datasets: list, *, rounds: int, conc: int, quick: bool) -> None:
    """Wrong passwords: attempts on ONE account (limit 100) against as many spread over 100
    accounts (one each a round, never reaching the limit). Judged attempts (401) cost an Argon2 hash,
    refused ones (429, locked) do not. A lock held across the hash would halve the hot rate.

    In rounds: each round gives every dataset one hot account's attempts, then one share of
    the spread's; the datasets' order turns round each round (1k, 1M, 1M, 1k, ...), so hot ÷
    spread and 1M ÷ 1k both come from adjacent seconds, as the other scenarios' legs do."""
    sides = []
    for d in datasets:
        lay = d.seed["layout"]
        sides.append(StormSide(d, hot=[f"u{i:07d}" for i in range(*lay["hot"])][:rounds],
                               spread=[f"u{i:07d}" for i in range(*lay["spread"])]))
    n_spread = rounds * len(sides[0].spread) if not quick else STORM_LIMIT + 20  # each spread account once a round
    shares = [n_spread // rounds + (1 if r < n_spread % rounds else 0) for r in range(rounds)]
    for r in range(rounds):
        for side in (sides if r % 2 == 0 else reversed(sides)):
            await side.burst(conc, "hot", lambda u=side.hot[r]: u, STORM_LIMIT + 20)
            await side.burst(conc, "spread", side.next_spread, shares[r])
    for side in sides:
        side.d.system.results["storm"] = side.result()


async def rehash_check(d) -> dict:
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

"""`make bench` / `make bench-quick`: Gatehouse's CPU per operation beside its bound and two peers.

Order of a run: install what is missing (the peers' venvs, granian), seed fresh databases
(Gatehouse on 1,000 users, and on 1,000,000 when DATABASE_URL is PostgreSQL and the run is
full; each peer on 1,000), mint the pending sign-ins and tokens, start every server, then run
each scenario in groups (bench/legs.py) on every system that has it, then the storm and the
re-hash check. Results: bench/results/latest.json, latest.md, latest.svg (bench/report.py).

BENCH_DB_PREFIX (default gh_bench) names the PostgreSQL databases and BENCH_REDIS_DB (default
5) the Redis db, so two benches on one machine keep apart. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from bench import report
from bench.barehash import BareHash
from bench.common import CORES, DATA, HOST, REDIS_DB, RESULTS, ROOT, PY, WORKERS, Databases, MailSink, log, run
from bench.cpu import Postgres, redis_pid
from bench.hashonly import params_from_env
from bench.legs import LegSize, Runner
from bench.storm import rehash_check, storm
from bench.systems import (PASSWORD, PEERS, SECRET, ensure_bench_extras, flush_redis, machine_info, mint,
                           prepare_datasets, start_gatehouse, start_hash_only)
from bench.totp import Totp


@dataclass
class Profile:
    name: str
    groups: int  # groups per scenario: one leg per system each; ratios are the groups' median
    hash_leg: LegSize  # the least a leg runs, password-bound scenarios
    cheap_leg: LegSize  # the least a leg runs, cheap endpoints
    storm_rounds: int
    bare_window_s: float
    hash_conc: int = 8
    cheap_conc: int = 16


FULL = Profile("full", groups=3, hash_leg=LegSize(3, 80), cheap_leg=LegSize(2, 200), storm_rounds=6, bare_window_s=1.0)
QUICK = Profile("quick", groups=3, hash_leg=LegSize(1, 30), cheap_leg=LegSize(1, 80), storm_rounds=1, bare_window_s=0.5)
SERVING_MODELS = ["gthread", "granian"]  # tried beside production's sync workers on the cheap scenarios


async def scenarios(runner: Runner, p: Profile, datasets, hash_only, peer, allauth, bare: BareHash) -> None:
    ours = [d.system for d in datasets]
    serving = datasets[0].extra  # 1k served by gthread and granian
    g = runner.group
    await g(ours + [peer, allauth] + serving, "empty", "empty view", conc=p.cheap_conc, size=p.cheap_leg)
    await g(ours + [allauth], "totp_api", "TOTP step (API)", conc=p.cheap_conc, size=p.cheap_leg)
    await g(ours + [hash_only, allauth], "password_api", "password sign-in (API)", conc=p.hash_conc, size=p.hash_leg)
    await g(ours + [hash_only, peer, allauth], "password_page", "password sign-in (page)", conc=p.hash_conc, size=p.hash_leg)
    bare.window(p.bare_window_s)
    await g(ours + [allauth] + serving, "refresh", "refresh with rotation", conc=p.cheap_conc, size=p.cheap_leg)
    await g(ours, "users_list", "Users API list page", conc=p.cheap_conc, size=p.cheap_leg)
    await g(ours, "users_detail", "Users API detail", conc=p.cheap_conc, size=p.cheap_leg)
    await g(ours, "users_put", "Users API PUT", conc=p.cheap_conc, size=p.cheap_leg)
    await g(ours + [peer, allauth], "totp_page", "TOTP step (page)", conc=p.cheap_conc, size=p.cheap_leg)
    email_conc = min(p.cheap_conc, *(len(d.fx["email"]) for d in datasets))  # one emailed code per user at a time
    await g(ours, "email_api", "email send + verify (API)", conc=email_conc, size=p.cheap_leg, requests_per_op=2)
    await g(ours, "password_totp_api", "password + TOTP (API)", conc=p.hash_conc, size=p.hash_leg, requests_per_op=2)
    await g([peer], "password_totp_page", "password + TOTP (page)", conc=p.hash_conc, size=p.hash_leg, requests_per_op=2)
    bare.window(p.bare_window_s)
    log("storm and re-hash check")
    await storm(datasets, rounds=p.storm_rounds, conc=p.hash_conc, quick=p.name == "quick")
    for d in datasets:
        d.system.results["rehash"] = await rehash_check(d)


async def main_async(p: Profile) -> dict:
    started = time.perf_counter()
    DATA.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    dbs = Databases(os.environ.get("DATABASE_URL"))
    params = params_from_env()
    sink = MailSink()
    smtp_port = await sink.start()
    base_env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
        "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CACHE_URL": f"redis://{HOST}:6379/{REDIS_DB}",
        "EMAIL_URL": f"smtp://{HOST}:{smtp_port}",
        "THROTTLE_AUTH_RATE": "100000000/s",  # one client address: the bench measures the server, not the throttle's refusals
        "ACCESS_TOKEN_SECONDS": "3600",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BENCH_STATIC_ROOT": str(DATA / "static"),
        "BENCH_PASSWORD": PASSWORD,
        "ARGON2_MEMORY_KIB": str(params[0]),
        "ARGON2_TIME_COST": str(params[1]),
        "ARGON2_PARALLELISM": str(params[2]),
        "PYTHONPATH": str(ROOT),
    }
    ensure_bench_extras()
    info = machine_info(dbs)
    log(f"{p.name} run on {info['cores']} cores ({info['cpu']}), {info['database']}, load {info['loadAverageAtStart']}")
    run([PY, "manage.py", "collectstatic", "--noinput", "-v0"], env={**base_env, "DATABASE_URL": dbs.url_for("small")})
    keys = ["1k", "1m"] if dbs.postgres and p.name == "full" else ["1k"]
    peer, allauth = PEERS
    for other in PEERS:
        log(f"{other.key}: venv, fresh database, 1,000 users")
        other.prepare(dbs, base_env, 1_000)
    datasets = prepare_datasets(keys, dbs, base_env)
    # Minted last, right before the servers start: pending sign-ins expire (10 and 15 minutes).
    for d in datasets:
        mint(d, dbs)
    for other in PEERS:
        other.mint(dbs)
    flush_redis()
    totp = Totp(SECRET)
    bare = BareHash(params, CORES)
    pg = Postgres(dbs.server) if dbs.postgres else None
    systems = []
    load = {"start": info["loadAverageAtStart"]}
    try:
        for i, d in enumerate(datasets):
            await start_gatehouse(d, dbs, totp, sink, serving_models=SERVING_MODELS if i == 0 else [])
            systems += [d.system, *d.extra]
        hash_only = await start_hash_only(base_env)
        systems.append(hash_only)
        for other in PEERS:
            await other.start(dbs, totp)
            systems.append(other.system)
        rpid = redis_pid(REDIS_DB)
        runner = Runner(groups=p.groups, pg=pg, redis_pid=rpid, scratch=DATA)
        bare.window(p.bare_window_s)
        log(f"servers up; scenarios in {p.groups} groups (Redis pid {rpid or 'not found: its CPU is not counted'})")
        await scenarios(runner, p, datasets, hash_only, peer.system, allauth.system, bare)
        load["end"] = [round(x, 2) for x in os.getloadavg()]
        rss = {s.label: s.server.peak_rss_kib() for s in systems}
    finally:
        for s in systems:
            s.server.stop()
        bare.close()
        sink.server.close()
        if pg:
            pg.close()
        if dbs.postgres:  # a million users take room: the next run seeds afresh anyway
            for name in ("small", "large", "schema", "peer", "allauth"):
                dbs.drop(name)
    result = {
        "generatedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": p.name,
        "machine": info,
        "loadAverage": load,
        "parameters": {
            "argon2id": {"memoryKiB": params[0], "timeCost": params[1], "parallelism": params[2]},
            "workers": WORKERS, "groups": p.groups,
            "leastPerLeg": {"passwordBound": [p.hash_leg.seconds, p.hash_leg.ops], "cheap": [p.cheap_leg.seconds, p.cheap_leg.ops]},
            "concurrency": {"passwordBound": p.hash_conc, "cheap": p.cheap_conc}, "database": dbs.kind,
            "redisCounted": rpid is not None,
        },
        "bareHash": bare.summary(),
        "systems": {s.label: {"scenarios": s.results, "peakRssKiBPerWorker": rss[s.label], "serving": s.server.serving}
                    for s in systems},
        "datasets": {d.key: {"users": d.seed["users"], "rows": d.rows, "seedSeconds": d.seed["seedSeconds"],
                             "setupSeconds": round(d.setup_s, 1), "queries": d.queries} for d in datasets},
        "peers": {o.key: {"rows": o.rows, "versions": o.versions(["django-two-factor-auth", "django-otp"] if o.key == "peer"
                                                                 else ["django-allauth"])} for o in PEERS},
        "wallSeconds": round(time.perf_counter() - started, 1),
    }
    result["criteria"] = report.criteria(result)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 users only, shorter legs (make bench-quick)")
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(QUICK if args.quick else FULL))
    report.write(result, RESULTS)
    print(report.criteria_table(result["criteria"]))
    log(f"done in {result['wallSeconds']:.0f}s; wrote {RESULTS / 'latest.json'}, latest.md, latest.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())

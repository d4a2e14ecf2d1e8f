"""The bench's output: the issue's criteria judged (holds / does not hold), latest.json,
latest.md and latest.svg (a hand-written SVG: each criterion's ratio, its groups' spread and
its target).

Every ratio is taken within a group (one leg per system, back to back) from CPU per operation,
and the criterion is judged on the median of the groups; the spread (min-max) is printed."""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from bench.cpu import median_spread

SCENARIOS = [  # key, label
    ("empty", "Empty view"),
    ("password_api", "Password sign-in (API)"),
    ("password_page", "Password sign-in (page)"),
    ("totp_api", "TOTP step (API)"),
    ("totp_page", "TOTP step (page)"),
    ("refresh", "Refresh with rotation"),
    ("users_list", "Users API list page"),
    ("users_detail", "Users API detail"),
    ("users_put", "Users API PUT"),
    ("email_api", "Email code send + verify (API, 2 requests)"),
    ("password_totp_api", "Password + TOTP (API, 2 requests)"),
    ("password_totp_page", "Password + TOTP (page, 2 requests)"),
]
LABELS = dict(SCENARIOS)
PEER_NAMES = {"two-factor": "django-two-factor-auth", "allauth": "django-allauth"}
CANNOT = {  # what a peer has no interface for
    ("two-factor", "password_api"): "no API",
    ("two-factor", "totp_api"): "no API",
    ("two-factor", "refresh"): "no API, no tokens",
}


def group_ratio(ours: list, theirs: list) -> dict:
    """theirs ÷ ours per group (CPU ms per operation: above 1, ours is cheaper), median and spread."""
    return median_spread([t / o if o and t else None for o, t in zip(ours, theirs)])


def _groups(result: dict, system: str, key: str) -> list | None:
    s = ((result.get("systems") or {}).get(system) or {}).get("scenarios", {}).get(key)
    return s.get("cpuMsPerOpByGroup") if s else None


def verdict(r: dict, target: float) -> bool | None:
    return None if r["median"] is None else r["median"] >= target


def _row(name: str, r: dict | None, target: float | None, note: str = "", value: str | None = None) -> dict:
    if r is None:
        return {"criterion": name, "value": value, "spread": None, "target": None if target is None else f">= {target:g}",
                "holds": None, "note": note}
    return {"criterion": name, "value": None if r["median"] is None else round(r["median"], 3),
            "spread": None if r["median"] is None else [round(r["min"], 3), round(r["max"], 3)],
            "target": f">= {target:g}", "holds": verdict(r, target), "note": note}


def criteria(result: dict) -> list[dict]:
    """The issue's criteria, in its order, from this run."""
    out = []

    def compare(name: str, ours: tuple[str, str], theirs: tuple[str, str], target: float, note: str = "") -> None:
        a, b = _groups(result, *ours), _groups(result, *theirs)
        if a and b:
            out.append(_row(name, group_ratio(a, b), target, note))
        else:
            out.append(_row(name, None, target, note or "not measured in this run"))

    # 1. The hash behind the same server (bench/hashonly.py): ours ÷ it, i.e. its CPU per sign-in over ours.
    for key in ("password_api", "password_page"):
        compare(f"{LABELS[key]}: CPU of the hash alone behind the same server / ours", ("1k", key), ("hash only", key), 0.90)
    # 2. Not behind either peer on the password sign-in.
    for key in ("password_page", "password_api"):
        for peer in ("two-factor", "allauth"):
            name = f"{LABELS[key]} vs {PEER_NAMES[peer]}: their CPU per sign-in / ours"
            if (peer, key) in CANNOT:
                out.append(_row(name, None, None, f"{PEER_NAMES[peer]} cannot: {CANNOT[(peer, key)]}", value="-"))
            else:
                compare(name, ("1k", key), (peer, key), 1.0)
    # 3. The TOTP step: 3x django-two-factor-auth, 2x allauth, page and API where the peer has one.
    for key in ("totp_page", "totp_api"):
        for peer, target in (("two-factor", 3.0), ("allauth", 2.0)):
            name = f"{LABELS[key]} vs {PEER_NAMES[peer]}: their CPU per verify / ours"
            if (peer, key) in CANNOT:
                out.append(_row(name, None, None, f"{PEER_NAMES[peer]} cannot: {CANNOT[(peer, key)]}", value="-"))
            else:
                compare(name, ("1k", key), (peer, key), target)
    # 4. Refresh: 2x allauth headless.
    compare("Refresh with rotation vs django-allauth headless: their CPU per refresh / ours", ("1k", "refresh"), ("allauth", "refresh"), 2.0)
    out.append(_row("Refresh with rotation vs django-two-factor-auth", None, None,
                    f"django-two-factor-auth cannot: {CANNOT[('two-factor', 'refresh')]}", value="-"))
    # 5. 1M users against 1k users: 1k's CPU per operation over 1M's.
    systems = result.get("systems") or {}
    if "1m" in systems:
        for key, label in SCENARIOS:
            if key in systems["1k"]["scenarios"] and key in systems["1m"]["scenarios"]:
                compare(f"1M / 1k users: {label} (CPU per op of 1k / of 1M)", ("1m", key), ("1k", key),
                        0.8 if key == "users_list" else 0.9)
    else:
        out.append(_row("1M / 1k users", None, None, "not run: needs DATABASE_URL=postgres://... and the full profile", value="-"))
    # 6. The storm, as before: no count lost, none past the limit, one hot account as fast as a spread, 1M as 1k.
    storms = {k: systems[k]["scenarios"].get("storm") for k in ("1k", "1m") if k in systems}
    for key, st in storms.items():
        if not st:
            continue
        out.append(_row(f"Storm ({key}): lost counts", None, None, value=str(st["lostCounts"])) | {"target": "= 0", "holds": st["lostCounts"] == 0})
        out.append(_row(f"Storm ({key}): attempts past the limit", None, None, value=str(st["attemptsPastLimit"]))
                   | {"target": "= 0", "holds": st["attemptsPastLimit"] == 0})
        hs = st["hotOverSpread"]
        out.append(_row(f"Storm ({key}): one hot account / spread (judged attempts per second)", None, None, value=f"{hs}")
                   | {"target": ">= 0.9", "holds": hs is not None and hs >= 0.9})
    if storms.get("1k") and storms.get("1m"):
        r = storms["1m"]["opsPerS"] / storms["1k"]["opsPerS"] if storms["1k"]["opsPerS"] else None
        out.append(_row("Storm: 1M / 1k users (hot account's judged attempts per second)", None, None,
                        value=None if r is None else f"{r:.3f}") | {"target": ">= 0.9", "holds": r is not None and r >= 0.9})
    # 7. Peak RSS per worker.
    rss = {label: [round(k / 1024, 1) for k in s.get("peakRssKiBPerWorker") or []] for label, s in systems.items()}
    out.append(_row("Peak RSS per worker (MiB)", None, None, value="; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in rss.items()))
               | {"target": "reported", "holds": True})
    return out


def _f(v, digits=2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def criteria_table(rows: list[dict]) -> str:
    lines = ["| criterion | median | groups (min-max) | target | holds | note |", "|---|---|---|---|---|---|"]
    for c in rows:
        holds = {True: "holds", False: "**does not hold**", None: "-"}[c["holds"]]
        spread = f"{c['spread'][0]:.3f}-{c['spread'][1]:.3f}" if c.get("spread") else "-"
        value = f"{c['value']:.3f}" if isinstance(c["value"], float) else (c["value"] if c["value"] is not None else "not measured")
        lines.append(f"| {c['criterion']} | {value} | {spread} | {c['target'] or '-'} | {holds} | {c['note']} |")
    return "\n".join(lines)


def scenario_table(result: dict) -> list[str]:
    lines = ["| scenario | system | CPU ms/op (median) | groups (min-max) | server / database / redis / client ms/op | ops/s (median) "
             "| p50 / p99 ms | errors | client |", "|---|---|---|---|---|---|---|---|---|"]
    for key, label in SCENARIOS:
        for name, system in result["systems"].items():
            s = system["scenarios"].get(key)
            if not s:
                continue
            c, by = s["cpuMsPerOp"], s["cpuMsPerOpByProcess"]
            split = " / ".join(_f(by.get(k)) for k in ("server", "database", "redis", "client"))
            lines.append(f"| {label} | {name} | {_f(c['median'])} | {_f(c['min'])}-{_f(c['max'])} | {split} | {_f(s['opsPerS'], 1)} "
                         f"| {_f(s['p50Ms'], 1)} / {_f(s['p99Ms'], 1)} | {s['errors']}{' (' + escape(s['errorSample'][:60]) + ')' if s['errors'] else ''} "
                         f"| {s['client']} |")
    return lines


def serving_table(result: dict) -> list[str]:
    systems = result["systems"]
    models = [k for k in systems if k.startswith("1k ")]
    if not models:
        return []
    lines = ["| scenario | served by | CPU ms/op (median) | vs sync (sync's CPU / its, median, min-max) | ops/s (median) |",
             "|---|---|---|---|---|"]
    for key in ("empty", "refresh"):
        base = systems["1k"]["scenarios"].get(key)
        if not base:
            continue
        lines.append(f"| {LABELS[key]} | gunicorn sync (production) | {_f(base['cpuMsPerOp']['median'])} | 1 | {_f(base['opsPerS'], 1)} |")
        for m in models:
            s = systems[m]["scenarios"].get(key)
            if s:
                r = group_ratio(s["cpuMsPerOpByGroup"], base["cpuMsPerOpByGroup"])
                name = {"1k gthread": "gunicorn gthread, keep-alive", "1k granian": "granian (WSGI)"}.get(m, m)
                lines.append(f"| {LABELS[key]} | {name} | {_f(s['cpuMsPerOp']['median'])} | {_f(r['median'], 3)} "
                             f"({_f(r['min'], 3)}-{_f(r['max'], 3)}) | {_f(s['opsPerS'], 1)} |")
    return lines


def spreads(result: dict) -> dict:
    """How far the groups of one system and scenario lay apart, as (max - min) / median, for CPU
    per operation and for throughput: the median over every system and scenario, and the worst."""
    out = {}
    for field_ in ("cpuMsPerOpByGroup", "opsPerSByGroup"):
        found = []
        for name, system in result["systems"].items():
            for key, s in system["scenarios"].items():
                vals = [v for v in (s.get(field_) or []) if v]
                if len(vals) >= 2:
                    m = median_spread(vals)
                    found.append(((m["max"] - m["min"]) / m["median"], f"{LABELS.get(key, key)} on {name}"))
        if found:
            found.sort()
            out[field_] = {"median": round(found[len(found) // 2][0], 3), "worst": round(found[-1][0], 3), "worstAt": found[-1][1]}
    return out


def markdown(result: dict) -> str:
    m, p = result["machine"], result["parameters"]
    load = result.get("loadAverage", {})
    bh = result.get("bareHash") or {}
    out = [
        "# Gatehouse bench: latest run", "",
        f"{result['generatedAt']}, profile `{result['profile']}`, {result['wallSeconds']:.0f} s wall. Machine: {m['cores']} cores "
        f"({m['cpu']}), {m['memoryMiB']:,} MiB; {m['database']}; Python {m['python']}, Django {m['django']}, gunicorn {m['gunicorn']}, "
        f"granian {m['granian']}, wrk {m['wrk']}. Load average (1, 5, 15 min) at start {load.get('start')}, at the end {load.get('end')}.",
        "",
        f"Argon2id m={p['argon2id']['memoryKiB']} KiB, t={p['argon2id']['timeCost']}, p={p['argon2id']['parallelism']} everywhere; "
        f"{p['workers']} workers per server; {p['groups']} groups per scenario, one leg per system in each (a wrk leg runs at least "
        f"{p['leastPerLeg']['passwordBound'][0]} s and {p['leastPerLeg']['passwordBound'][1]} operations password-bound, "
        f"{p['leastPerLeg']['cheap'][0]} s and {p['leastPerLeg']['cheap'][1]} cheap; a TOTP leg is a list of up to 150 single-use "
        f"sign-ins; concurrency {p['concurrency']['passwordBound']} / {p['concurrency']['cheap']}), "
        "the order turning round each group. CPU per operation = CPU seconds of every process of the leg (server master and workers, "
        "the PostgreSQL backends of its database, Redis" + ("" if p.get("redisCounted") else " (not found: not counted)")
        + ", the client) / operations that succeeded. A ratio is taken within each group; the criterion is judged on the median.",
        "",
        "## Criteria", "",
        criteria_table(result["criteria"]), "",
        *_load_note(result), "",
        "## Every scenario", "",
        *scenario_table(result), "",
    ]
    serving = serving_table(result)
    if serving:
        out += ["## Serving models (1k users, the cheap scenarios)", "",
                "Gatehouse on the 1k dataset served three ways, in the same groups: production's gunicorn sync workers (a new "
                "connection per request), gunicorn gthread (4 threads per worker, connections kept alive) and granian's WSGI "
                "interface (kept alive). wrk keeps connections alive wherever the server allows.", "", *serving, ""]
    out += ["## Fixed database state", ""]
    for key, d in result["datasets"].items():
        out.append(f"- Gatehouse {key}: {', '.join(f'{t} {n:,}' for t, n in d['rows'].items())} (seeded in {d['seedSeconds']} s; "
                   f"pending sign-ins, sessions and refresh tokens minted right before the servers start)")
    for key, d in result["peers"].items():
        out.append(f"- {PEER_NAMES['two-factor' if key == 'peer' else 'allauth']} "
                   f"({', '.join(f'{k} {v}' for k, v in d['versions'].items())}): {', '.join(f'{t} {n:,}' for t, n in d['rows'].items())}")
    out += ["", "Every database is created afresh and seeded by this run, and dropped at its end.", ""]
    if bh:
        out += ["## The bare hash, for reference", "",
                f"Argon2id verifies in {bh['processes']} processes, no server ({bh['windows']} windows through the run): "
                f"{_f(bh['opsPerS'], 1)} verifies/s (windows {bh['opsPerSRange']}), {_f(bh['cpuMsPerOp'])} CPU ms per verify "
                f"(windows {bh['cpuMsPerOpRange']}). The hash alone behind the same gunicorn and wrk (`hash only` above) is the "
                "bound the password sign-in is judged against.", ""]
    q = result["datasets"].get("1k", {}).get("queries", {})
    if q:
        out += ["## SQL per request (1k, counted in-process)", ""]
        for k, v in q.items():
            if isinstance(v, dict) and "statements" in v:
                out.append(f"- {k}: {v['statements']} statements, {v['writes']} writes")
        out.append("")
    for key in ("1k", "1m"):
        st = result["systems"].get(key, {}).get("scenarios", {}).get("storm")
        if st:
            out.append(f"Storm ({key}): {st['hotRounds']} round(s) of wrong passwords on one account (limit {st['limit']}): "
                       f"{st['hotJudged']} judged, {st['hotRefused429']} refused (429), counters {st['hotCounters']}, locked "
                       f"{st['hotLocked']}; spread: {st['spreadJudged']} judged, {st['spreadCounted']} counted; "
                       f"hot {st['hotJudgedPerS']}/s, spread {st['spreadJudgedPerS']}/s.")
        rh = result["systems"].get(key, {}).get("scenarios", {}).get("rehash")
        if rh:
            out.append(f"Re-hash on sign-in ({key}): stored `{rh['before']}` became `{rh['after']}`: upgraded = {rh['upgraded']}.")
    out += ["", "![criteria: median ratio, groups' spread, target](latest.svg)", ""]
    analysis = Path(__file__).resolve().parent / "results" / "where-the-cpu-goes.md"
    if analysis.is_file():  # hand-written from bench/profile.py for the criteria that do not hold
        out += [analysis.read_text().rstrip(), ""]
    return "\n".join(out)


def _load_note(result: dict) -> list[str]:
    load, sp = result.get("loadAverage", {}), spreads(result)
    cpu, ops = sp.get("cpuMsPerOpByGroup"), sp.get("opsPerSByGroup")
    if not cpu or not ops:
        return []
    return [f"Machine load: {result['machine']['cores']} cores shared with other programs; load average {load.get('start')} at the "
            f"start, {load.get('end')} at the end. Spread of the groups, (max - min) / median over every system and scenario: "
            f"CPU per operation {cpu['median']:.0%} (median), {cpu['worst']:.0%} at worst ({cpu['worstAt']}); throughput "
            f"{ops['median']:.0%} (median), {ops['worst']:.0%} at worst ({ops['worstAt']}). Hence the criteria are judged on CPU "
            "per operation, and throughput is only reported."]


def svg(result: dict) -> str:
    """One bar per judged ratio: the bar is the median, the whisker the groups' min-max, the tick the target."""
    rows = [c for c in result["criteria"] if c.get("spread")]
    row_h, left, width, top = 24, 560, 360, 50
    scale = max([3.5] + [c["spread"][1] for c in rows])
    height = top + row_h * len(rows) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" font-family="sans-serif" font-size="11">',
             '<rect width="100%" height="100%" fill="#fff"/>',
             f'<text x="10" y="20" font-size="14" font-weight="bold">Gatehouse: CPU-per-operation ratios ({escape(result["machine"]["database"])}, '
             f'{result["machine"]["cores"]} cores, {result["generatedAt"]})</text>',
             '<text x="10" y="38" fill="#555">Bar: median of the groups; whisker: min-max; black tick: target. Green holds, red does not.</text>']
    for i, c in enumerate(rows):
        y = top + i * row_h
        x = lambda v: left + width * min(v, scale) / scale  # noqa: E731
        color = "#2b7a3d" if c["holds"] else "#c0392b"
        target = float(c["target"].split()[-1])
        parts += [f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(c["criterion"][:90])}</text>',
                  f'<rect x="{left}" y="{y + 4}" width="{x(c["value"]) - left:.1f}" height="13" fill="{color}"/>',
                  f'<line x1="{x(c["spread"][0]):.1f}" x2="{x(c["spread"][1]):.1f}" y1="{y + 10}" y2="{y + 10}" stroke="#000"/>',
                  f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="{y + 1}" y2="{y + 20}" stroke="#000" stroke-width="2"/>',
                  f'<text x="{left + width + 6}" y="{y + 14}">{c["value"]:.2f} ({c["target"]})</text>']
    parts.append("</svg>")
    return "\n".join(parts)


def write(result: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("latest.json", json.dumps(result, indent=1)), ("latest.md", markdown(result)), ("latest.svg", svg(result))):
        tmp = directory / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(directory / name)

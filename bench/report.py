"""The bench's output: the "Done when" verdicts, a text table, latest.json / latest.md, and an
SVG chart of each scenario's throughput against its bound (hand-written SVG, no plotting library)."""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

# (key, label, what the rate counts)
ROWS = [
    ("password_api", "Password sign-in (API)", "sign-ins"),
    ("password_page", "Password sign-in (page)", "sign-ins"),
    ("password_totp_api", "Password + TOTP (API, 2 requests)", "sign-ins"),
    ("totp_api", "TOTP step (API)", "verifies"),
    ("totp_page", "TOTP step (page)", "verifies"),
    ("email_api", "Email code send + verify (API)", "sign-ins"),
    ("refresh", "Refresh with rotation", "refreshes"),
    ("users_list", "Users API list page", "pages"),
    ("users_detail", "Users API detail", "requests"),
    ("users_put", "Users API PUT", "requests"),
    ("storm", "Failed-sign-in storm, one hot account", "judged attempts"),
]
PEER_ROWS = [
    ("password_page", "Peer: password sign-in (page)", "sign-ins"),
    ("password_totp_page", "Peer: password + TOTP (page, 2 requests)", "sign-ins"),
    ("totp_page", "Peer: TOTP step (page)", "verifies"),
]
# The second peer, django-allauth: pages (account, mfa) and its headless API ("app" client, JWT tokens).
ALLAUTH_ROWS = [
    ("password_api", "allauth: password sign-in (API)", "sign-ins"),
    ("password_page", "allauth: password sign-in (page)", "sign-ins"),
    ("totp_api", "allauth: TOTP step (API)", "verifies"),
    ("totp_page", "allauth: TOTP step (page)", "verifies"),
    ("refresh", "allauth: refresh with rotation", "refreshes"),
]
# What the first peer cannot do: django-two-factor-auth has pages only (no API, no tokens).
PEER_CANNOT = "password sign-in (API), TOTP step (API), refresh: django-two-factor-auth has no API and no tokens"
# bench/hashonly.py: the Argon2 verify and nothing else, behind the same gunicorn and client
HASH_ONLY_ROWS = [
    ("password_api", "Reference: the hash alone behind HTTP", "sign-ins"),
]


def _scenarios_of(result: dict, name: str) -> dict:
    """The scenarios of a system beside Gatehouse's datasets (``peer``, ``allauth``, ``hashOnly``); {} when it did not run."""
    return (result.get(name) or {}).get("scenarios") or {}


def _others(result: dict):
    """The systems beside Gatehouse's datasets: (their scenarios, their rows)."""
    return [(_scenarios_of(result, name), rows) for name, rows in (("peer", PEER_ROWS), ("allauth", ALLAUTH_ROWS),
                                                                      ("hashOnly", HASH_ONLY_ROWS))]


def _rate(s: dict | None) -> float | None:
    return None if not s else s.get("opsPerS")


def _check(name: str, value, target: str, holds: bool | None, note: str = "") -> dict:
    return {"criterion": name, "value": value, "target": target, "holds": holds, "note": note}


def done_when(result: dict) -> list[dict]:
    """The issue's "Done when" list, each as a ratio from this run."""
    out = []
    small = (result.get("datasets") or {}).get("1k", {}).get("scenarios", {})
    large = (result.get("datasets") or {}).get("1m", {}).get("scenarios", {})
    peer = _scenarios_of(result, "peer")
    pg = result["parameters"]["database"] == "postgresql"
    note_db = "" if pg else "not PostgreSQL: the issue judges these on PostgreSQL"

    def ratio_check(key, label, target):
        s = small.get(key)
        if not s or s.get("ratio") is None:
            out.append(_check(label, None, f">= {target}", None, "not measured (API not mounted?)"))
        else:
            out.append(_check(label, s["ratio"], f">= {target}", s["ratio"] >= target, note_db))

    ratio_check("password_api", "Password sign-in / Argon2 bound", 0.90)
    bare = _scenarios_of(result, "hashOnly").get("password_api")
    if small.get("password_api") and bare and bare.get("ratio") is not None:
        out.append(_check("The hash alone behind the same HTTP server / Argon2 bound, for reference", bare["ratio"], "(reference)", None,
                           "what any application reaches here (bench/hashonly.py, same gunicorn and client, legs in the same group); "
                           f"password sign-in / it: {_rate(small['password_api']) / bare['opsPerS']:.3f}"))
    ratio_check("password_totp_api", "Password + TOTP (both requests) / Argon2 bound", 0.85)
    ours, theirs = _rate(small.get("totp_api")), _rate(peer.get("totp_page"))
    if ours and theirs:
        out.append(_check("TOTP step (API) / peer's TOTP step", round(ours / theirs, 2), ">= 3", ours / theirs >= 3, note_db))
    ours_page = _rate(small.get("totp_page"))
    if ours_page and theirs:
        out.append(_check("TOTP step (page) / peer's TOTP step (page), for reference", round(ours_page / theirs, 2), "(same interface)",
                          None, "both pages: session read, sign-in, session write"))
    allauth = _scenarios_of(result, "allauth")
    for key, label, target in (("totp_api", "TOTP step (API)", 2.0), ("totp_page", "TOTP step (page)", 2.0),
                               ("refresh", "Refresh with rotation", 2.0), ("password_api", "Password sign-in (API)", 1.0),
                               ("password_page", "Password sign-in (page)", 1.0)):
        ours, theirs = small.get(key), allauth.get(key)
        if _rate(ours) and _rate(theirs):
            ms = f"server ms/op: ours {_fmt(ours.get('serverCpuMsPerOp'), 2)}, allauth's {_fmt(theirs.get('serverCpuMsPerOp'), 2)}"
            out.append(_check(f"{label} / allauth's", round(ours["opsPerS"] / theirs["opsPerS"], 2), f">= {target:g}",
                              ours["opsPerS"] / theirs["opsPerS"] >= target, "; ".join(filter(None, [ms, note_db]))))
    if peer:
        out.append(_check("Scenarios the first peer cannot do", PEER_CANNOT, "(named)", None))
    q = (result.get("datasets") or {}).get("1k", {}).get("queries", {})
    if q.get("service"):
        sv = q["service"]
        out.append(_check("SQL per TOTP verify (mfa.verify.code_verify)", f"{sv['statements']} statements, {sv['writes']} writes",
                           "<= 5 statements, <= 1 write", sv["statements"] <= 5 and sv["writes"] <= 1))
    if q.get("apiRequest"):
        a = q["apiRequest"]
        out.append(_check("SQL per TOTP verify, whole API request", f"{a['statements']} statements, {a['writes']} writes",
                           "(reported)", None, "includes the JWT pair, last_login and the audit event"))
    ratio_check("refresh", "Refresh with rotation / empty view", 0.35)
    st = small.get("storm")
    if st:
        out.append(_check("Storm: lost counts", st["lostCounts"], "0", st["lostCounts"] == 0))
        out.append(_check("Storm: attempts past the limit", st["attemptsPastLimit"], "0", st["attemptsPastLimit"] == 0))
        out.append(_check("Storm: one hot account / spread", st["hotOverSpread"], ">= 0.9",
                           st["hotOverSpread"] is not None and st["hotOverSpread"] >= 0.9, note_db))
    if large:
        for key, label, _ in ROWS:
            a, b = _rate(small.get(key)), _rate(large.get(key))
            if a and b:
                target = 0.8 if key == "users_list" else 0.9
                note = ""
                if small.get(key, {}).get("capped") or large.get(key, {}).get("capped"):
                    note = "TOTP legs capped at the codes open to the dataset's users (RFC 6238: one per user and step)"
                if small.get(key, {}).get("endedEarly") or large.get(key, {}).get("endedEarly"):
                    note = "a leg ended early: every TOTP user of its pool had spent the steps open to them"
                out.append(_check(f"1M / 1k users: {label}", round(b / a, 3), f">= {target}", b / a >= target, note))
    else:
        out.append(_check("1,000,000 users", None, "every scenario >= 0.9 of 1k (list >= 0.8)", None,
                          "not run: needs DATABASE_URL=postgres://... and the full profile"))
    rss = {k: v.get("peakRssKiBPerWorker") for k, v in (result.get("datasets") or {}).items()}
    out.append(_check("Peak RSS per gunicorn worker (MiB)", {k: [round(x / 1024, 1) for x in v or []] for k, v in rss.items()},
                       "reported", True))
    return out


def _fmt(v, digits=1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _rows(result: dict) -> list[list[str]]:
    small = result["datasets"].get("1k", {}).get("scenarios", {})
    large = result["datasets"].get("1m", {}).get("scenarios", {})
    rows = []
    for key, label, unit in ROWS:
        s = small.get(key)
        if not s:
            continue
        big = large.get(key)
        b = s.get("bound") or {}
        scale = round(big["opsPerS"] / s["opsPerS"], 3) if big and s.get("opsPerS") else None
        rows.append([
            label, _fmt(s.get("ratio"), 3), b.get("name", "-"), f"{_fmt(s.get('opsPerS'))} {unit}/s", _fmt(b.get("opsPerS")),
            _fmt(big.get("opsPerS")) if big else "-", _fmt(scale, 3), _fmt(s.get("latencyP50Ms"), 1) if key != "storm" else "-",
            _fmt(s.get("latencyP99Ms"), 1) if key != "storm" else "-", _fmt(s.get("errors", 0)),
            _fmt(s.get("clientCpuCores"), 2) if key != "storm" else "-", _fmt(s.get("serverCpuMsPerOp"), 2) if key != "storm" else "-",
        ])
    for scenarios, defs in _others(result):
        for key, label, unit in defs:
            s = scenarios.get(key)
            if not s:
                continue
            b = s.get("bound") or {}
            rows.append([label, _fmt(s.get("ratio"), 3), b.get("name", "-"), f"{_fmt(s['opsPerS'])} {unit}/s", _fmt(b.get("opsPerS")),
                         "-", "-", _fmt(s["latencyP50Ms"], 1), _fmt(s["latencyP99Ms"], 1), _fmt(s["errors"]), _fmt(s["clientCpuCores"], 2),
                         _fmt(s.get("serverCpuMsPerOp"), 2)])
    return rows


HEAD = ["scenario", "ratio", "bound", "rate (1k users)", "bound/s", "rate (1M)", "1M/1k", "p50 ms", "p99 ms", "errors",
        "client cores", "server ms/op"]


def table(result: dict) -> str:
    rows = [HEAD] + _rows(result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("Done when:")
    for c in result["doneWhen"]:
        mark = {True: "HOLDS", False: "FAILS", None: "  -  "}[c["holds"]]
        lines.append(f"  [{mark}] {c['criterion']}: {c['value']} (target {c['target']}){'  ' + c['note'] if c['note'] else ''}")
    return "\n".join(lines)


def _legs(result: dict) -> list[str]:
    """Markdown: each interleaved scenario's legs in the order they ran, the drift they show."""
    small = result["datasets"].get("1k", {}).get("scenarios", {})
    large = result["datasets"].get("1m", {}).get("scenarios", {})
    lines, head = [], None
    for key, label, _ in ROWS:
        a, b = small.get(key) or {}, large.get(key) or {}
        legs = sorted([(leg["position"], name, leg["opsPerS"]) for name, s in (("1k", a), ("1M", b)) for leg in s.get("legs", [])])
        if len(legs) < 4 or not a.get("opsPerS"):
            continue
        names = [name for _, name, _ in legs]
        if head is None:
            head = names
        if names == head:  # the storm and any scenario run otherwise have no row here
            lines.append(f"| {label} | " + " | ".join(_fmt(rate) for _, _, rate in legs) + f" | {_fmt(b['opsPerS'] / a['opsPerS'], 3)} |")
    if not lines:
        return []
    return ["", f"Legs, in the order they ran (operations/s; each leg 1/{len(head) // 2} of the scenario's seconds per dataset):", "",
            "| scenario | " + " | ".join(head) + " | 1M/1k |", "|---" * (len(head) + 2) + "|"] + lines


def markdown(result: dict) -> str:
    m = result["machine"]
    p = result["parameters"]
    a = p["argon2id"]
    out = [
        "# Gatehouse bench: latest run",
        "",
        f"{result['generatedAt']}, profile `{result['profile']}`, {result['wallSeconds']:.0f} s wall. "
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memoryMiB']:,} MiB, {m['os']}; Python {m['python']}, Django {m['django']}, "
        f"gunicorn {m['gunicorn']}, {m['database']}; load average at start {', '.join(f'{x:.2f}' for x in m['loadAverageAtStart'])}.",
        "",
        f"Parameters: Argon2id m={a['memoryKiB']} KiB, t={a['timeCost']}, p={a['parallelism']}; {p['server']}; client: {p['client']}; "
        f"concurrency {p['concurrency']['passwordBound']} (password-bound) / {p['concurrency']['cheap']} (cheap); "
        f"{p['secondsPerScenario']['passwordBound']:.0f} s / {p['secondsPerScenario']['cheap']:.0f} s per scenario and dataset; "
        + (f"Argon2 bound: windows of {p['argon2Bound']['windowSeconds']} s with {p['argon2Bound']['processes']} processes "
           f"(one per core): {p['argon2Bound']['method']}."
           if p.get("argon2Bound", {}).get("method") else
           f"Argon2 bound measured for {p['secondsPerScenario']['argon2Bound']:.0f} s right before each password-bound scenario.")
        + (f" 1M / 1k: {p['interleaving']}." if p.get("interleaving") else ""),
        "",
        "Ratios first: each scenario's rate over its bound (the Argon2 bound for sign-ins, the empty Django view through the same "
        "gunicorn for cheap endpoints). The client's own CPU is shown in cores (it shares the machine with the server).",
        "",
        "| " + " | ".join(HEAD) + " |",
        "|" + "---|" * len(HEAD),
    ]
    out += ["| " + " | ".join(r) + " |" for r in _rows(result)]
    out += _legs(result)
    out += ["", "## Done when", "", "| criterion | value | target | holds | note |", "|---|---|---|---|---|"]
    for c in result["doneWhen"]:
        mark = {True: "yes", False: "**no**", None: "-"}[c["holds"]]
        out.append(f"| {c['criterion']} | {c['value']} | {c['target']} | {mark} | {c['note']} |")
    shown_bounds: set = set()  # interleaved scenarios: both datasets carry the one bound of their group
    for name, ds in result["datasets"].items():
        st = ds["scenarios"].get("storm")
        out += ["", f"## {name} users ({ds['users']:,}): details", ""]
        out.append(f"Seeded in {ds['seedSeconds']} s; peak RSS per worker: {', '.join(f'{x / 1024:.1f} MiB' for x in ds['peakRssKiBPerWorker'])}; "
                   f"one durable commit on this disk: {ds.get('commitLatencyMs')} ms.")
        if st:
            out.append(
                f"Storm: {st['hotRounds']} round(s) of {st['limit'] + 20} wrong passwords on one account (limit {st['limit']}): "
                f"{st['hotJudged']} judged (401), {st['hotRefused429']} refused (429), counters {st['hotCounters']}, locked: {st['hotLocked']}; "
                f"spread: {st['spreadAttempts']} over 100 accounts, {st['spreadJudged']} judged, {st['spreadCounted']} counted. "
                f"Lost counts {st['lostCounts']}, past the limit {st['attemptsPastLimit']}, hot/spread {st['hotOverSpread']}."
            )
        bounds = [(k, s["bound"]) for k, s in ds["scenarios"].items() if isinstance(s, dict) and (s.get("bound") or {}).get("windows")]
        if bounds:
            # The windows of an interleaved group are shared by its datasets: listed once, with the first.
            def windows(k, b):
                seen = (k, tuple(b["windows"])) in shown_bounds
                shown_bounds.add((k, tuple(b["windows"])))
                return "" if seen else f" from windows {b['windows']} (spread {b['spread']})"

            out.append("Argon2 bound (verifies/s; spread = (max - min) / bound): "
                       + "; ".join(f"{k} {b['opsPerS']}"
                                   + (f" (its legs: {', '.join(_fmt(leg['opsPerS']) for leg in b['legs'])})" if b.get("legs") else "")
                                   + windows(k, b) for k, b in bounds) + ".")
        rh = ds["scenarios"].get("rehash")
        if rh:
            out.append(f"Re-hash on sign-in: stored `{rh['before']}` became `{rh['after']}` (settings `{rh['settings']}`): upgraded = {rh['upgraded']}.")
        for qname, q in (ds.get("queries") or {}).items():
            out.append(f"SQL, {qname}: {q['statements']} statements, {q['writes']} writes (+{q['transactionControl']} transaction control), HTTP {q['status']}.")
    if result.get("peer"):
        pr = result["peer"]
        q = pr["queries"]["pageRequest"]
        out += ["", "## Peer", "",
                f"django-two-factor-auth {pr['versions']['django-two-factor-auth']}, django-otp {pr['versions']['django-otp']}, "
                f"{pr['users']:,} users; peak RSS per worker {', '.join(f'{x / 1024:.1f} MiB' for x in pr['peakRssKiBPerWorker'])}; "
                f"SQL per token step (whole request): {q['statements']} statements, {q['writes']} writes."]
    if result.get("allauth"):
        aa = result["allauth"]
        out += ["", "## allauth", "",
                f"django-allauth {aa['versions']['django-allauth']} (account, mfa, headless: app client, JWT tokens with rotation), "
                f"{aa['users']:,} users, authenticators {aa['authenticators']}; its groups interleaved with ours; "
                f"peak RSS per worker {', '.join(f'{x / 1024:.1f} MiB' for x in aa['peakRssKiBPerWorker'])}. "
                f"The first peer has no row for {PEER_CANNOT}."]
    if result.get("hashOnly"):
        ho = result["hashOnly"]
        out += ["", "## Reference: the hash alone behind HTTP", "",
                "`bench/hashonly.py`: a WSGI application with no framework, database or cache that verifies the posted password "
                "against one Argon2id hash with the same parameters, served by the same gunicorn (same workers) and driven by the "
                "same client, its legs in the API password sign-in's group. Its ratio to the Argon2 bound is what any application "
                "reaches on this machine once sign-ins arrive over HTTP from a client on the same cores; peak RSS per worker "
                f"{', '.join(f'{x / 1024:.1f} MiB' for x in ho['peakRssKiBPerWorker'])}."]
    out += ["", "![throughput against bound](latest.svg)", ""]
    return "\n".join(out)


def svg(result: dict) -> str:
    """One bar per scenario: the grey frame is the bound, the filled part the measured rate."""
    bars = []
    for ds_name, ds in result["datasets"].items():
        for key, label, _ in ROWS:
            s = ds["scenarios"].get(key)
            if s and s.get("bound") and s.get("opsPerS") is not None:
                bars.append((f"{label} [{ds_name}]", s["opsPerS"], s["bound"]["opsPerS"], s["bound"]["name"]))
    for scenarios, defs in _others(result):
        for key, label, _ in defs:
            s = scenarios.get(key)
            if s and s.get("bound"):
                bars.append((label, s["opsPerS"], s["bound"]["opsPerS"], s["bound"]["name"]))
    row_h, left, width, top = 26, 330, 420, 50
    height = top + row_h * len(bars) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 260}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="#fff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">Gatehouse throughput against its bound ({escape(result["machine"]["database"])}, '
        f'{result["machine"]["cores"]} cores)</text>',
        '<text x="10" y="40" fill="#555">Frame = bound (Argon2 verifies/s for sign-ins, empty view for cheap endpoints); fill = measured rate.</text>',
    ]
    for i, (label, rate, bound, bname) in enumerate(bars):
        y = top + i * row_h
        frac = min(rate / bound, 1.5) if bound else 0
        color = "#2b7a3d" if frac >= 0.9 or (bname != "argon2" and frac >= 0.35) else "#c0392b" if frac < 0.35 else "#d4a017"
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{width}" height="16" fill="#eee" stroke="#999"/>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{min(frac, 1.0) * width:.1f}" height="16" fill="{color}"/>')
        parts.append(f'<text x="{left + width + 8}" y="{y + 15}">{rate:,.0f}/s of {bound:,.0f}/s ({bname}) = {rate / bound if bound else 0:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write(result: dict, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("latest.json", json.dumps(result, indent=2)), ("latest.md", markdown(result)), ("latest.svg", svg(result))):
        tmp = directory / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(directory / name)

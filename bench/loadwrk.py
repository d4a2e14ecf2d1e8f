"""Drive a server with ``wrk`` (bench/wrk/requests.lua) for one leg of a scenario.

A plan says what to send: ``cycle`` (the same requests round and round: sign-ins, the empty
view, reads), ``once`` (single-use requests: pending sign-ins with their TOTP codes; wrk stops
after the last answer) or ``chain`` (refresh with rotation: each answer's new refresh token is
the next request's). The bench writes the plan as a Lua table, runs ``wrk -t 1 -c <concurrency>``
and reads the counts its script prints (``BENCH_JSON``)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"


@dataclass
class Plan:
    expect: int
    mode: str = "cycle"  # cycle | once | chain
    limit: int = 0  # cycle, chain: the leg ends once it has this many answers and has run min_s seconds
    min_s: int = 1
    reqs: list[bytes] = field(default_factory=list)
    # chain: POST path with body prefix + token + suffix; the answer's next token by Lua pattern
    path: str = ""
    headers: dict = field(default_factory=dict)
    prefix: str = ""
    suffix: str = ""
    pattern: str = ""
    tokens: list[str] = field(default_factory=list)


def raw(method: str, path: str, *, host: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def lua_string(value) -> str:
    """A Lua string literal for any bytes (decimal escapes for all but plain printable ASCII)."""
    data = value.encode() if isinstance(value, str) else value
    out = []
    for b in data:
        c = chr(b)
        out.append(c if 32 <= b < 127 and c not in '"\\' else f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def lua_spec(plan: Plan) -> str:
    parts = [f"expect = {plan.expect}", f"mode = {lua_string(plan.mode)}", f"limit = {plan.limit}",
             "reqs = {" + ",\n".join(lua_string(r) for r in plan.reqs) + "}"]
    if plan.mode == "chain":
        parts += [f"path = {lua_string(plan.path)}",
                  "headers = {" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in plan.headers.items()) + "}",
                  f"prefix = {lua_string(plan.prefix)}", f"suffix = {lua_string(plan.suffix)}",
                  f"pattern = {lua_string(plan.pattern)}",
                  "tokens = {" + ", ".join(lua_string(t) for t in plan.tokens) + "}"]
    return "return {\n" + ",\n".join(parts) + "\n}\n"


def parse_output(text: str) -> dict:
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise ValueError("wrk printed no BENCH_JSON line:\n" + text[-2000:])


@dataclass
class WrkResult:
    ops: int
    errors: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    sample: str
    tokens: list[str] = field(default_factory=list)  # chain: the tokens still usable after the leg


CEILING_S = 60  # wrk's duration: a leg that has not ended by itself ends here


async def run_wrk(plan: Plan, *, host: str, port: int, concurrency: int, spec_file: Path) -> WrkResult:
    """One leg: until the plan's list is answered (once), or its ``limit`` answers and ``min_s``
    seconds (cycle, chain); at most ``CEILING_S`` seconds."""
    if plan.mode == "once" and not plan.reqs:
        return WrkResult(0, 0, 0.0, 0.0, 0.0, "")
    if plan.mode == "chain" and len(plan.tokens) < concurrency:
        raise ValueError(f"a chain needs a token per connection: {len(plan.tokens)} < {concurrency}")
    spec_file.write_text(lua_spec(plan))
    duration = CEILING_S
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "30s", "-s", str(SCRIPT), f"http://{host}:{port}/",
        env={**os.environ, "BENCH_WRK_SPEC": str(spec_file)}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        limit=1 << 24)  # a chain's last line carries every token it hands back
    lines = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def stop():
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # wrk prints its summary and exits

    async for line in proc.stdout:
        text = line.decode(errors="replace")
        lines.append(text)
        if text.startswith("BENCH_DONE"):
            stop()
        elif text.startswith("BENCH_LIMIT"):
            loop.call_later(max(0.0, t0 + plan.min_s - loop.time()), stop)
    await proc.wait()
    got = parse_output("".join(lines))
    errors = got["bad"] + got["connectErrors"] + got["readErrors"] + got["writeErrors"] + got["timeouts"]
    return WrkResult(ops=got["ok"], errors=errors, elapsed=got["durationUs"] / 1e6, p50_ms=got["p50Us"] / 1000,
                     p99_ms=got["p99Us"] / 1000, sample=got["sample"], tokens=got.get("tokens", []))

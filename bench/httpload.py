"""The bench's own HTTP/1.1 client on asyncio streams, for the scenarios wrk cannot drive
(bench/scenarios.py says which and why): an operation there is a conversation, its next
request built from the last answer (an emailed code, the mfaToken of a password step, a
session cookie). Responses are parsed just enough (status, headers, a Content-Length or
chunked body); connections are kept alive when the server allows it and re-opened when it
closes them. Its CPU is counted in the leg's (bench/cpu.py: the bench process itself).
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Connection:
    """One client connection to host:port, re-opened whenever the server closed it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.connects += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        content_type: str = "",
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: gatehouse-bench"]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
            if content_type:
                lines.append(f"Content-Type: {content_type}")
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            if self.writer is None:
                await self._open()
                fresh = True
            else:
                fresh = False
            try:
                self.writer.write(raw)
                return await self._read()
            except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                self.close()
                if fresh or attempt == 2:
                    raise
        raise HttpError("unreachable")

    async def _read(self) -> Response:
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        first, *rest = head[:-4].decode("latin-1").split("\r\n")
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError(f"bad status line {first!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        for line in rest:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cname, _, cval = value.split(";", 1)[0].partition("=")
                cookies[cname.strip()] = cval.strip()
            else:
                headers[name] = value
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await reader.read()  # until the server closes
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, cookies, body)

    # conveniences
    async def post_json(self, path: str, data, *, headers=None) -> Response:
        return await self.request("POST", path, body=json.dumps(data).encode(), content_type="application/json", headers=headers)

    async def put_json(self, path: str, data, *, headers=None) -> Response:
        return await self.request("PUT", path, body=json.dumps(data).encode(), content_type="application/json", headers=headers)

    async def post_form(self, path: str, data: dict, *, cookies=None, headers=None) -> Response:
        return await self.request(
            "POST", path, body=urlencode(data).encode(), content_type="application/x-www-form-urlencoded", cookies=cookies, headers=headers
        )


class Exhausted(Exception):
    """The scenario's supply of users/tokens/steps ran out: the run ends early, measured so far."""


@dataclass
class Result:
    ops: int = 0
    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    exhausted: bool = False
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ops / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p * len(s)))]



class Op:
    """What one operation did; a scenario coroutine fills it in."""

    __slots__ = ("requests", "ok", "note", "codes")

    def __init__(self):
        self.requests, self.ok, self.note, self.codes = 0, True, "", []

    def record(self, resp: Response) -> Response:
        self.requests += 1
        self.codes.append(resp.status)
        return resp

    def fail(self, note: str) -> None:
        self.ok, self.note = False, note
        raise _OpFailed()

    def expect(self, resp: Response, status: int, what: str) -> Response:
        self.record(resp)
        if resp.status != status:
            self.ok = False
            self.note = f"{what}: HTTP {resp.status} {resp.body[:160]!r}"
            raise _OpFailed()
        return resp


class _OpFailed(Exception):
    pass


async def run_closed_loop(
    host: str,
    port: int,
    *,
    concurrency: int,
    duration: float,
    op,
    max_ops: int | None = None,
) -> Result:
    """``concurrency`` workers each run ``await op(conn, Op())`` back to back for ``duration``
    seconds (or until ``max_ops`` operations or ``Exhausted``). Counts operations that
    succeeded; failures are counted as errors with a sample of what went wrong."""
    result = Result()
    deadline = time.perf_counter() + duration
    started = 0

    async def worker():
        nonlocal started
        conn = Connection(host, port)
        try:
            while time.perf_counter() < deadline and not result.exhausted:
                if max_ops is not None:
                    if started >= max_ops:
                        return
                    started += 1
                o = Op()
                t0 = time.perf_counter()
                try:
                    await op(conn, o)
                except Exhausted:
                    result.exhausted = True
                    return
                except _OpFailed:
                    pass
                except (OSError, asyncio.IncompleteReadError, HttpError, ValueError, KeyError) as exc:
                    o.ok, o.note = False, f"{type(exc).__name__}: {exc}"[:200]
                    conn.close()
                result.requests += o.requests
                for code in o.codes:
                    result.statuses[code] = result.statuses.get(code, 0) + 1
                if o.ok:
                    result.ops += 1
                    result.latencies.append(time.perf_counter() - t0)
                else:
                    result.errors += 1
                    if len(result.error_samples) < 20:
                        result.error_samples.append(o.note)
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - t0
    return result

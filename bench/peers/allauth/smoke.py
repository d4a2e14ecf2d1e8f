"""Smoke test of the allauth peer: every scenario the bench will measure, once each.

    python3 bench/peers/allauth/smoke.py      # any Python 3.11+ (stdlib only): Gatehouse's venv or the peer's

Installs the peer's venv if needed (install.py), creates a fresh PostgreSQL database
``gh_allauth_smoke_<pid>`` on SMOKE_PG_URL (default postgres://postgres@127.0.0.1:5432),
migrates and seeds it (prepare.py, 100 users), serves it with gunicorn on a free loopback
port (serve.sh's command line), then signs in:

  page       password form, then the TOTP form           /accounts/login/ -> /accounts/2fa/authenticate/
  page-pwd   password form of a user without MFA           /accounts/login/ -> /done/
  api-pwd    headless "app" client, a user without MFA    /_allauth/app/v1/auth/login
  api-app    headless "app" client: password, then TOTP    /_allauth/app/v1/auth/login -> .../auth/2fa/authenticate
  api-rc     the same, a recovery code at the 2FA step
  api-browser headless "browser" client (cookies + CSRF)  /_allauth/browser/v1/auth/login -> .../auth/2fa/authenticate
  refresh    /_allauth/app/v1/tokens/refresh (JWT strategy), the new access token used, the old refresh token refused

Prints one line per scenario and exits 1 if any failed. Drops its database and flushes its
Redis db (SMOKE_REDIS_DB, default 14) at the end; stops only the gunicorn it started.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from install import GUNICORN, HERE, ensure_venv  # noqa: E402

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # bench/run.py's SECRET
PASSWORD = "correct horse battery staple 42"  # bench/run.py's PASSWORD
HOST = "127.0.0.1"
PG = os.environ.get("SMOKE_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS_DB = int(os.environ.get("SMOKE_REDIS_DB", "14"))
DB = f"gh_allauth_smoke_{os.getpid()}"


def totp(step_offset: int = 0) -> str:
    counter = int(time.time()) // 30 + step_offset
    h = hmac.new(base64.b32decode(SECRET), struct.pack(">Q", counter), hashlib.sha1).digest()
    o = h[-1] & 0x0F
    return f"{(struct.unpack('>I', h[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


class Client:
    """HTTP/1.1 with a cookie jar, one connection per request (enough for a smoke test)."""

    def __init__(self, port: int):
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, *, form: dict | None = None, data: dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        h = {"Host": f"{HOST}:{self.port}", **(headers or {})}
        body = None
        if form is not None:
            body, h["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        elif data is not None:
            body, h["Content-Type"] = json.dumps(data).encode(), "application/json"
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        payload = r.read()
        for c in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in c.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, payload

    def json(self, method: str, path: str, data: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        status, _, body = self.request(method, path, data=data, headers=headers)
        try:
            return status, json.loads(body)
        except ValueError:
            raise AssertionError(f"{method} {path}: HTTP {status}, not JSON: {body[:200]!r}")


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def csrf_from(body: bytes) -> str:
    m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    check(m is not None, "no csrfmiddlewaretoken in the form")
    return m.group(1).decode()


# --- the scenarios ---------------------------------------------------------------------------

def page(port: int, user: str) -> str:
    c = Client(port)
    status, _, body = c.request("GET", "/accounts/login/")
    check(status == 200, f"GET login form: HTTP {status}")
    status, h, body = c.request("POST", "/accounts/login/", form={"csrfmiddlewaretoken": csrf_from(body), "login": user, "password": PASSWORD})
    check(status == 302 and h.get("location", "").endswith("/accounts/2fa/authenticate/"),
          f"password form: HTTP {status} -> {h.get('location')}")
    status, _, body = c.request("GET", "/accounts/2fa/authenticate/")
    check(status == 200 and b'name="code"' in body, f"GET TOTP form: HTTP {status}")
    status, h, _ = c.request("POST", "/accounts/2fa/authenticate/", form={"csrfmiddlewaretoken": csrf_from(body), "code": totp()})
    check(status == 302 and h.get("location", "").endswith("/done/"), f"TOTP form: HTTP {status} -> {h.get('location')}")
    status, _, _ = c.request("GET", "/accounts/2fa/")  # login_required: proves the session is signed in
    check(status == 200, f"signed-in page: HTTP {status}")
    return "password form 302 -> 2fa/authenticate; TOTP form 302 -> /done/; /accounts/2fa/ 200 (signed in)"


def page_pwd(port: int, user: str) -> str:
    c = Client(port)
    status, _, body = c.request("GET", "/accounts/login/")
    status, h, _ = c.request("POST", "/accounts/login/", form={"csrfmiddlewaretoken": csrf_from(body), "login": user, "password": PASSWORD})
    check(status == 302 and h.get("location", "").endswith("/done/"), f"password form: HTTP {status} -> {h.get('location')}")
    return "password form 302 -> /done/"


def api_pwd(port: int, user: str) -> str:
    c = Client(port)
    status, r = c.json("POST", "/_allauth/app/v1/auth/login", {"username": user, "password": PASSWORD})
    meta = r.get("meta", {})
    check(status == 200 and meta.get("is_authenticated") and meta.get("access_token") and meta.get("refresh_token"),
          f"login: HTTP {status} {r}")
    return "login 200 (access_token + refresh_token)"


def app_login(c: Client, user: str) -> str:
    status, r = c.json("POST", "/_allauth/app/v1/auth/login", {"username": user, "password": PASSWORD})
    flows = {f["id"]: f for f in r.get("data", {}).get("flows", [])}
    check(status == 401 and flows.get("mfa_authenticate", {}).get("is_pending"), f"login: HTTP {status} {r}")
    token = r["meta"].get("session_token")
    check(bool(token), "login: no session_token")
    return token


def api_app(port: int, user: str, code: str | None = None) -> tuple[str, dict]:
    c = Client(port)
    token = app_login(c, user)
    status, r = c.json("POST", "/_allauth/app/v1/auth/2fa/authenticate", {"code": code or totp()}, {"X-Session-Token": token})
    meta = r.get("meta", {})
    check(status == 200 and meta.get("is_authenticated"), f"2fa/authenticate: HTTP {status} {r}")
    check(bool(meta.get("access_token")) and bool(meta.get("refresh_token")), f"2fa/authenticate: no JWT pair in {meta.keys()}")
    status, r = c.json("GET", "/_allauth/app/v1/auth/session", headers={"Authorization": f"Bearer {meta['access_token']}"})
    check(status == 200 and r["data"]["user"]["username"] == user, f"session with the access token: HTTP {status}")
    return ("login 401 (flow mfa_authenticate pending, session_token); 2fa/authenticate 200 "
            "(access_token + refresh_token); auth/session with Bearer 200"), meta


def api_browser(port: int, user: str) -> str:
    c = Client(port)
    status, _ = c.json("GET", "/_allauth/browser/v1/auth/session")
    check(status == 401 and "csrftoken" in c.cookies, f"session: HTTP {status}, cookies {list(c.cookies)}")
    hdr = lambda: {"X-CSRFToken": c.cookies["csrftoken"]}  # noqa: E731
    status, r = c.json("POST", "/_allauth/browser/v1/auth/login", {"username": user, "password": PASSWORD}, hdr())
    flows = {f["id"]: f for f in r.get("data", {}).get("flows", [])}
    check(status == 401 and flows.get("mfa_authenticate", {}).get("is_pending"), f"login: HTTP {status} {r}")
    status, r = c.json("POST", "/_allauth/browser/v1/auth/2fa/authenticate", {"code": totp()}, hdr())
    check(status == 200 and r["meta"]["is_authenticated"], f"2fa/authenticate: HTTP {status} {r}")
    status, _ = c.json("GET", "/_allauth/browser/v1/auth/session")
    check(status == 200, f"session cookie: HTTP {status}")
    return "login 401 (mfa_authenticate pending, session cookie); 2fa/authenticate 200; auth/session 200"


def refresh(port: int, user: str) -> str:
    _, meta = api_app(port, user)
    c = Client(port)
    status, r = c.json("POST", "/_allauth/app/v1/tokens/refresh", {"refresh_token": meta["refresh_token"]})
    data = r.get("data", {})
    check(status == 200 and data.get("access_token"), f"refresh: HTTP {status} {r}")
    check(bool(data.get("refresh_token")) and data["refresh_token"] != meta["refresh_token"], "refresh: the refresh token was not rotated")
    status, r2 = c.json("GET", "/_allauth/app/v1/auth/session", headers={"Authorization": f"Bearer {data['access_token']}"})
    check(status == 200, f"session with the refreshed access token: HTTP {status}")
    status, _ = c.json("POST", "/_allauth/app/v1/tokens/refresh", {"refresh_token": meta["refresh_token"]})
    check(status >= 400, f"the spent refresh token was accepted again (HTTP {status})")
    status, _ = c.json("POST", "/_allauth/app/v1/tokens/refresh", {"refresh_token": data["refresh_token"]})
    check(status == 200, f"the rotated refresh token: HTTP {status}")
    return "tokens/refresh 200 (new access + rotated refresh token); new access token 200; spent refresh token refused"


# --- setup -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def main() -> int:
    py = ensure_venv()
    env = {**os.environ, "SECRET_KEY": base64.b64encode(os.urandom(40)).decode(), "DATABASE_URL": f"{PG}/{DB}",
           "ALLAUTH_PEER_REDIS_URL": f"redis://{HOST}:6379/{REDIS_DB}", "DJANGO_SETTINGS_MODULE": "allauth_project.settings",
           "PYTHONPATH": str(HERE)}
    admin = f"import psycopg, sys; c = psycopg.connect('{PG}/postgres', autocommit=True); c.execute(sys.argv[1])"
    flush = f"import redis; redis.Redis(host='{HOST}', port=6379, db={REDIS_DB}).flushdb()"
    run = lambda *a: subprocess.run([str(x) for x in a], cwd=HERE, env=env, check=True)  # noqa: E731
    run(py, "-c", admin, f'CREATE DATABASE "{DB}"')
    server, log = None, HERE / ".venv" / "smoke.gunicorn.log"
    results = []
    try:
        run(py, "-c", flush)
        run(py, "manage.py", "migrate", "--noinput", "-v0")
        seed_file = HERE / ".venv" / "smoke.seed.json"
        run(py, "prepare.py", "seed", "--users", 100, "--secret", SECRET, "--password", PASSWORD, "--out", seed_file)
        seed = json.loads(seed_file.read_text())
        port = free_port()
        with open(log, "w") as lf:
            server = subprocess.Popen([str(GUNICORN), "allauth_project.wsgi:application", "-w", "2", "-b", f"{HOST}:{port}",
                                       "--log-level", "warning", "--graceful-timeout", "5", "--timeout", "60"],
                                      cwd=HERE, env=env, stdout=lf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while True:
            try:
                if Client(port).request("GET", "/done/")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"gunicorn did not start; see {log}")
            time.sleep(0.2)
        print(f"allauth peer on {HOST}:{port}, database {DB}: {seed['users']} users, authenticators {seed['authenticators']}, "
              f"one Argon2id hash ({seed['hashParams']})")
        users = iter(f"u{i:07d}" for i in range(seed["totp"][0], seed["totp"][1]))
        scenarios = [
            ("page", lambda: page(port, next(users))),
            ("page-pwd", lambda: page_pwd(port, "u0000000")),
            ("api-pwd", lambda: api_pwd(port, "u0000001")),
            ("api-app", lambda: api_app(port, next(users))[0]),
            ("api-rc", lambda: api_app(port, next(users), seed["recoveryCodes"][0])[0].replace("2fa/authenticate", "2fa/authenticate (recovery code)")),
            ("api-browser", lambda: api_browser(port, next(users))),
            ("refresh", lambda: refresh(port, next(users))),
        ]
        for name, fn in scenarios:
            try:
                t0 = time.perf_counter()
                detail = fn()
                results.append(True)
                print(f"  ok    {name:12s} {detail} ({(time.perf_counter() - t0) * 1000:.0f} ms)")
            except Exception as exc:  # noqa: BLE001 - reported, and the exit status says so
                results.append(False)
                print(f"  FAIL  {name:12s} {exc}")
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)  # the master we started; it stops its workers
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        run(py, "-c", flush)
        run(py, "-c", admin, f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    ok = bool(results) and all(results)
    print(f"{sum(results)}/{len(results)} scenarios passed" + ("" if ok else f"; server log: {log}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

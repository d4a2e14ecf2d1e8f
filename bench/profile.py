"""Where one request's CPU goes, in-process: the WSGI application called the way gunicorn
calls it, against the bench's database, without HTTP or a client on the same cores.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gh_profile python -m bench.profile [scenario ...] [-n N] [--top K]

Scenarios: empty, password_api, password_page, totp_api, totp_page, refresh, users_detail. For each: CPU and wall
time per request (median of N), on PostgreSQL the database server's CPU per request (its
backend process, read from /proc), and with ``--top`` the K functions with the most own time
(cProfile). A tool for finding overhead, not a measurement of throughput (``make bench``).
The database is created and seeded (1,000 users) on first use, like the bench's.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
os.environ.setdefault("SECRET_KEY", "bench-profile-" + "x" * 40)
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("EMAIL_URL", "memorymail://")  # no scenario here mails; required outside DEBUG
os.environ.setdefault("THROTTLE_AUTH_RATE", "100000000/s")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("ACCESS_TOKEN_SECONDS", "3600")
os.environ.setdefault("BENCH_STATIC_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data", "static"))
os.environ.setdefault("MFA_ENCRYPTION_KEYS", "0tUNyRUD1K7o1d0Pcx9qb0zpNzZHZhHwhgF-7Yq2ZAk=")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

from bench import prepare  # noqa: E402
from mfa import totp  # noqa: E402
from mfa.models import TOTPDevice  # noqa: E402
from tenants.models import Tenant  # noqa: E402

APP = get_wsgi_application()


def environ(method: str, path: str, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json") -> dict:
    env = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "HTTP_USER_AGENT": "bench-profile",
    }
    if body:
        env["CONTENT_TYPE"] = content_type
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


def call(env: dict) -> int:
    status = []
    body = APP(env, lambda s, h, exc=None: status.append(s))
    for _ in body:
        pass
    if hasattr(body, "close"):
        body.close()
    return int(status[0].split()[0])


def post(path: str, payload: dict) -> dict:
    return environ("POST", path, json.dumps(payload).encode())


def _db_cpu_s() -> float | None:
    """CPU seconds used so far by this process's PostgreSQL backend (same machine), else None."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def requests_for(scenario: str, n: int, seed: dict, fx: dict) -> list[dict]:
    base = f"/tenant/{prepare.TENANT}/v2"
    if scenario == "empty":
        return [environ("GET", "/bench/empty/") for _ in range(n)]
    if scenario == "password_api":
        names = prepare._range(seed, "pwd")
        return [post(f"{base}/auth/login", {"username": names[i % len(names)], "password": prepare.PASSWORD}) for i in range(n)]
    if scenario == "totp_api":
        TOTPDevice.objects.update(last_step=0)
        code = totp.code_at_step(prepare.TOTP_SECRET, totp.step_at(time.time()))
        users = list(fx["totpApi"].items())[:n]
        return [post(f"{base}/auth/mfa/verify", {"mfaToken": tok, "code": code}) for _name, tok in users]
    if scenario in ("password_page", "totp_page"):
        from urllib.parse import urlencode

        csrf = fx["csrf"]
        page = f"/tenant/{prepare.TENANT}"
        if scenario == "password_page":
            names = prepare._range(seed, "pwd")
            forms = [(f"{page}/login/", {"username": names[i % len(names)], "password": prepare.PASSWORD}, "") for i in range(n)]
        else:
            TOTPDevice.objects.update(last_step=0)
            code = totp.code_at_step(prepare.TOTP_SECRET, totp.step_at(time.time()))
            forms = [(f"{page}/mfa/verify/", {"code": code}, f"; sessionid={keys[0]}") for _name, keys in list(fx["totpPage"].items())[:n]]
        return [environ("POST", path, urlencode({"csrfmiddlewaretoken": csrf, **form}).encode(), {"Cookie": f"csrftoken={csrf}{extra}"},
                        content_type="application/x-www-form-urlencoded") for path, form, extra in forms]
    if scenario == "refresh":
        from accounts.tokens import AMR_PASSWORD, token_pair_issue

        users = prepare._users(prepare._range(seed, "pwd"))
        toks = [token_pair_issue(user=users[i % len(users)], amr=AMR_PASSWORD)["refreshToken"] for i in range(n)]
        return [post(f"{base}/auth/token/refresh", {"refreshToken": t}) for t in toks]
    if scenario == "users_detail":
        uid = fx["apiUserIds"][0]
        return [environ("GET", f"{base}/Users/{uid}", headers={"Authorization": "Bearer " + fx["adminAccess"]}) for _ in range(n)]
    raise SystemExit(f"unknown scenario {scenario!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=["empty", "password_api", "totp_api", "refresh"])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--top", type=int, default=0)
    args = ap.parse_args(argv)
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # a page that renders needs the manifest, as in production
    if not Tenant.objects.filter(pk=prepare.TENANT).exists():
        prepare.seed(1000)
    seed = {"layout": prepare.layout(Tenant.objects.get(pk=prepare.TENANT).users.count())}
    fx = prepare.fixtures({**seed, "users": 1000})
    for scenario in args.scenarios:
        # password: 100 hashes are plenty; TOTP: one code for the whole list, which must stay
        # within ±1 time step while the list runs (cProfile slows every request down)
        n = min(args.n, 100) if scenario.startswith("password") else min(args.n, 60) if scenario.startswith("totp") else args.n
        warm = requests_for(scenario, 5, seed, fx)
        for env in warm:
            call(env)
        envs = requests_for(scenario, n, seed, fx)
        db_before = _db_cpu_s()
        cpu, wall, statuses = [], [], set()
        prof = cProfile.Profile(time.process_time) if args.top else None
        for env in envs:
            c0, w0 = time.process_time(), time.perf_counter()
            if prof:
                prof.enable()
            statuses.add(call(env))
            if prof:
                prof.disable()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        db = (_db_cpu_s() - db_before) / n if db_before is not None else None
        print(f"{scenario:14s} n={n:4d} status={sorted(statuses)} cpu median {statistics.median(cpu) * 1e3:6.2f} ms"
              f"  mean {statistics.mean(cpu) * 1e3:6.2f} ms  wall median {statistics.median(wall) * 1e3:6.2f} ms"
              + (f"  database server cpu mean {db * 1e3:5.2f} ms" if db is not None else ""))
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(args.top)
            print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

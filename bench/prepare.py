"""The Django side of `make bench`, run in its own process with the bench's settings and
database: seed a tenant and its users, mint the fixtures a scenario needs before it
starts (tokens, pending sessions), count SQL statements per TOTP verify, and read back
the counters the storm and the re-hash check are judged by.

    python -m bench.prepare seed --users N --out seed.json
    python -m bench.prepare fixtures --seed seed.json --out fixtures.json
    python -m bench.prepare count-queries --seed seed.json --out queries.json
    python -m bench.prepare counters --usernames a,b,c
    python -m bench.prepare hash-params --username u0000291

Users are written with the ORM's ``bulk_create`` in batches and ONE precomputed Argon2
hash (a million hashes would take hours).
"""
import argparse
import json
import os
import sys
import time
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings_bench")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import NoReverseMatch, Resolver404, resolve  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.tokens import AMR_PASSWORD, token_pair_issue  # noqa: E402
from flows import pending  # noqa: E402
from mfa import crypto, totp  # noqa: E402
from mfa.models import TOTPDevice  # noqa: E402
from mfa.verify import code_verify  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.services import tenant_create  # noqa: E402

TENANT = "bench"
PASSWORD = os.environ.get("BENCH_PASSWORD", "correct horse battery staple 42")
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the same app secret for every seeded user
OLD_PARAMS = {"memory_cost": 8192, "time_cost": 1, "parallelism": 1}  # a hash the re-hash check must upgrade

# Who is who, by index (username u0000000, u0000001, ...). Identical in every dataset so a
# scenario does the same work at 1,000 and at 1,000,000 users.
ROLES = [
    ("admin", 0, 1),  # tenant admin: the Users API's caller
    ("pwd", 1, 50),  # no MFA: password sign-in, refresh chains
    ("email", 51, 30),  # emailed codes
    ("hot", 81, 10),  # storm: one account per round
    ("spread", 91, 100),  # storm: the same attempts over many accounts
    ("api", 191, 100),  # Users API detail and PUT targets
    ("rehash", 291, 1),  # stored with weaker Argon2 parameters than the settings
    ("probe", 292, 3),  # TOTP users for counting SQL statements (service, API, page)
    ("totp", 295, None),  # everyone else: authenticator app
]


def username(i: int) -> str:
    return f"u{i:07d}"


def layout(n: int) -> dict:
    out = {}
    for name, start, count in ROLES:
        count = n - start if count is None else count
        out[name] = [start, start + count]
    return out


def _mfa_of(i: int) -> str:
    if 51 <= i < 81:
        return "email"
    if i >= 292:
        return "totp"
    return "none"


# --- seed ----------------------------------------------------------------------------------

SEED_BATCH = 5_000  # rows per INSERT: a million users never sit in memory at once
REFRESH_TOKENS = 256  # refresh-token chains: a leg spends up to one per connection (those in flight at its end)


def _batches(objs, size: int = SEED_BATCH):
    batch = []
    for obj in objs:
        batch.append(obj)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(n: int) -> dict:
    t0 = time.perf_counter()
    tenant = tenant_create(
        tenant_id=TENANT, name="Bench", password_max_attempts=100, email_resend_seconds=0, lockout_seconds=300
    )
    pw_hash = make_password(PASSWORD)
    now = timezone.now()
    encrypted = crypto.encrypt(TOTP_SECRET)
    # The ORM's bulk_create with ONE precomputed hash: every other column (the security
    # stamp, the lockout counters...) is the model's own default, as user_create would write it.
    people = (
        User(tenant=tenant, username=username(i), email=f"{username(i)}@bench.example", password=pw_hash,
             is_tenant_admin=i == 0, is_staff=i == 0, mfa_method=_mfa_of(i))
        for i in range(n)
    )
    for batch in _batches(people):
        User.objects.bulk_create(batch)
        TOTPDevice.objects.bulk_create(
            TOTPDevice(user=u, secret_encrypted=encrypted, confirmed_at=now, last_step=0)
            for u in batch if u.mfa_method == "totp"
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")  # fresh planner statistics for a million new rows; no ORM call for it
    from argon2 import PasswordHasher, Type

    old = "argon2" + PasswordHasher(type=Type.ID, **OLD_PARAMS).hash(PASSWORD)
    User.objects.filter(tenant=tenant, username=username(291)).update(password=old)
    count = User.objects.filter(tenant=tenant).count()
    return {
        "tenant": TENANT,
        "users": count,
        "password": PASSWORD,
        "totpSecret": TOTP_SECRET,
        "layout": layout(n),
        "hashPrefix": pw_hash.rsplit("$", 2)[0],
        "seedSeconds": round(time.perf_counter() - t0, 2),
        "vendor": connection.vendor,
    }


# --- fixtures ------------------------------------------------------------------------------

def _range(seed_info: dict, role: str, limit: int | None = None, offset: int = 0) -> list[str]:
    start, end = seed_info["layout"][role]
    start += offset
    end = min(end, start + limit) if limit else end
    return [username(i) for i in range(start, end)]


def _users(names: list[str]) -> list[User]:
    by_name = {u.username: u for u in User.objects.select_related("tenant").filter(tenant_id=TENANT, username__in=names)}
    return [by_name[n] for n in names]


def _pending_sessions(users: list[User], per_user: int) -> dict[str, list[str]]:
    store = SessionStore()
    expire = timezone.now() + timedelta(hours=2)
    out: dict[str, list[str]] = {}
    rows = []
    for user in users:
        keys = out.setdefault(user.username, [])
        for _ in range(per_user):
            p = pending.Pending(str(user.pk), user.tenant_id, time.time(), user.sign_in_fingerprint())
            key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
            rows.append(Session(session_key=key, session_data=store.encode({pending.SESSION_KEY: p.__dict__.copy()}), expire_date=expire))
            keys.append(key)
    Session.objects.bulk_create(rows, batch_size=2000)
    return out


def fixtures(seed_info: dict) -> dict:
    small = seed_info["users"] < 10_000
    n_totp = seed_info["layout"]["totp"][1] - seed_info["layout"]["totp"][0]
    # A pending sign-in is single-use: one completed sign-in of a user (last_login changes)
    # ends every other pending sign-in of that user. So each scenario that starts from minted
    # pending sign-ins has users of its own, one pending sign-in each, used once.
    if small:
        half, rest = n_totp // 2, n_totp - n_totp // 2
        api_names = _range(seed_info, "totp", half)
        page_names = _range(seed_info, "totp", rest * 3 // 5, offset=half)
        pwd_totp_names = _range(seed_info, "totp", offset=half + rest * 3 // 5)
    else:
        api_names = _range(seed_info, "totp", 15_000)
        page_names = _range(seed_info, "totp", 8_000, offset=15_000)
        pwd_totp_names = _range(seed_info, "totp", 3_000, offset=23_000)
    admin = _users(_range(seed_info, "admin"))[0]
    pwd_users = _users(_range(seed_info, "pwd"))
    t0 = time.perf_counter()
    out = {
        "adminAccess": token_pair_issue(user=admin, amr=AMR_PASSWORD)["accessToken"],
        "refresh": [token_pair_issue(user=pwd_users[i % len(pwd_users)], amr=AMR_PASSWORD)["refreshToken"] for i in range(REFRESH_TOKENS)],
        "totpApi": {u.username: pending.token_issue(u) for u in _users(api_names)},
        "email": {u.username: pending.token_issue(u) for u in _users(_range(seed_info, "email"))},
        "totpPage": _pending_sessions(_users(page_names), 1),
        "pwdTotp": pwd_totp_names,
        "apiUserIds": [str(u.pk) for u in _users(_range(seed_info, "api"))],
        "csrf": get_random_string(32),
        "totpUsers": n_totp,
    }
    out["fixtureSeconds"] = round(time.perf_counter() - t0, 2)
    return out


# --- SQL statements per verify ---------------------------------------------------------------

def _classify(sql: str) -> str:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head in ("INSERT", "UPDATE", "DELETE"):
        return "write"
    if head in ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"):
        return "transaction"
    return "read"


def _captured(ctx: CaptureQueriesContext, status: int | None = None) -> dict:
    stmts = [q["sql"] for q in ctx.captured_queries]
    kinds = [_classify(s) for s in stmts]
    return {
        "status": status,
        "statements": sum(1 for k in kinds if k != "transaction"),
        "writes": kinds.count("write"),
        "transactionControl": kinds.count("transaction"),
        "sql": [s[:240] for s in stmts],
    }


def _route_exists(path: str) -> bool:
    try:
        resolve(path)
        return True
    except (Resolver404, NoReverseMatch):
        return False


def count_queries(seed_info: dict) -> dict:
    probes = _users(_range(seed_info, "probe"))
    step = totp.step_at(time.time())
    out: dict = {}
    # 1. The service alone: mfa.verify.code_verify, the one place a code is judged.
    TOTPDevice.objects.filter(user__in=probes).update(last_step=0)
    user = probes[0]
    with CaptureQueriesContext(connection) as ctx:
        code_verify(user=user, code=totp.code_at_step(TOTP_SECRET, step))
    out["service"] = _captured(ctx)
    # 2. The whole API request (middleware, throttle, token read, verify, JWT pair).
    client = Client(HTTP_HOST="127.0.0.1")
    api = f"/tenant/{TENANT}/v2/auth/mfa/verify"
    if _route_exists(api):
        token = pending.token_issue(probes[1])
        with CaptureQueriesContext(connection) as ctx:
            r = client.post(api, {"mfaToken": token, "code": totp.code_at_step(TOTP_SECRET, step)}, content_type="application/json")
        out["apiRequest"] = _captured(ctx, r.status_code)
    # 3. The whole page request (session read, verify, session login and write).
    sessions = _pending_sessions([probes[2]], 1)
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = sessions[probes[2].username][0]
    with CaptureQueriesContext(connection) as ctx:
        r = client.post(f"/tenant/{TENANT}/mfa/verify/", {"code": totp.code_at_step(TOTP_SECRET, step)})
    out["pageRequest"] = _captured(ctx, r.status_code)
    # 4. For scale: a refresh with rotation and a password sign-in, whole API requests.
    refresh = f"/tenant/{TENANT}/v2/auth/token/refresh"
    if _route_exists(refresh):
        pwd = _users(_range(seed_info, "pwd", 1))[0]
        token = token_pair_issue(user=pwd, amr=AMR_PASSWORD)["refreshToken"]
        with CaptureQueriesContext(connection) as ctx:
            r = client.post(refresh, {"refreshToken": token}, content_type="application/json")
        out["refreshRequest"] = _captured(ctx, r.status_code)
    TOTPDevice.objects.filter(user__in=probes).update(last_step=0)
    return out


# --- read-backs ------------------------------------------------------------------------------

def counters(names: list[str]) -> dict:
    now = timezone.now()
    rows = User.objects.filter(tenant_id=TENANT, username__in=names).values_list(
        "username", "failed_password_count", "locked_until"
    )
    return {n: {"failed": f, "locked": bool(lu and lu > now)} for n, f, lu in rows}


def hash_params(name: str) -> dict:
    encoded = User.objects.filter(tenant_id=TENANT, username=name).values_list("password", flat=True).get()
    params = encoded.split("$")[3]  # argon2$argon2id$v=19$m=...,t=...,p=...$salt$hash
    wanted = f"m={settings.ARGON2_MEMORY_KIB},t={settings.ARGON2_TIME_COST},p={settings.ARGON2_PARALLELISM}"
    return {"stored": params, "settings": wanted, "upgraded": params == wanted}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.prepare")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--out", required=True)
    for name in ("fixtures", "count-queries"):
        p = sub.add_parser(name)
        p.add_argument("--seed", required=True)
        p.add_argument("--out", required=True)
    p = sub.add_parser("counters")
    p.add_argument("--usernames", required=True)
    p = sub.add_parser("hash-params")
    p.add_argument("--username", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "seed":
        if Tenant.objects.filter(pk=TENANT).exists():
            print("the bench database is not empty; the bench script creates a fresh one", file=sys.stderr)
            return 2
        with transaction.atomic():
            result = seed(args.users)
    elif args.cmd in ("fixtures", "count-queries"):
        with open(args.seed) as f:
            info = json.load(f)
        result = fixtures(info) if args.cmd == "fixtures" else count_queries(info)
    elif args.cmd == "counters":
        result = counters(args.usernames.split(","))
    else:
        result = hash_params(args.username)
    if getattr(args, "out", None):
        with open(args.out, "w") as f:
            json.dump(result, f)
    else:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

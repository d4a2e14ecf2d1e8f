"""The peer's side of `make bench` (runs in bench/peers/.venv): seed users with TOTP devices,
make sessions waiting at the token step, and count SQL statements per token step.

    python prepare.py seed --users N --secret BASE32 --password P --out seed.json
    python prepare.py fixtures --seed seed.json --out fixtures.json
"""
import base64
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_project.settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
django.setup()

from peer_seed import PWD_USERS, copy_sessions, prepare_main, username  # noqa: E402

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402
from django_otp.oath import totp as otp_totp  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

LOGIN = "/account/login/"
PROBES = 2  # the next two are kept for counting statements


def seed(n: int, secret: str, password: str) -> dict:
    t0 = time.perf_counter()
    pw_hash = make_password(password)
    now = timezone.now()
    User.objects.bulk_create(
        [User(username=username(i), email=f"{username(i)}@bench.example", password=pw_hash, date_joined=now) for i in range(n)],
        batch_size=5000,
    )
    key = base64.b32decode(secret).hex()
    ids = User.objects.filter(username__gte=username(PWD_USERS)).values_list("pk", flat=True)
    TOTPDevice.objects.bulk_create(
        [TOTPDevice(user_id=pk, name="default", confirmed=True, key=key, tolerance=1, step=30, t0=0, digits=6) for pk in ids],
        batch_size=5000,
    )
    return {
        "users": User.objects.count(),
        "devices": TOTPDevice.objects.count(),
        "pwd": [0, PWD_USERS],
        "probe": [PWD_USERS, PWD_USERS + PROBES],
        "totp": [PWD_USERS + PROBES, n],
        "password": password,
        "seedSeconds": round(time.perf_counter() - t0, 2),
    }


def _token_step_template(name: str, password: str) -> dict:
    """The session of a user who has passed the password step, made by the real view once."""
    client = Client(HTTP_HOST="127.0.0.1")
    r = client.post(LOGIN, {"login_view-current_step": "auth", "auth-username": name, "auth-password": password})
    if r.status_code != 200 or b"token-otp_token" not in r.content:
        raise SystemExit(f"the peer's password step did not reach the token step (HTTP {r.status_code})")
    return dict(client.session.items())


def _sessions(template: dict, users: list[User], per_user: int) -> dict[str, list[str]]:
    def fill(data, user):
        data["wizard_login_view"].update(user_pk=str(user.pk), authentication_time=int(time.time()))

    return copy_sessions(template, users, per_user, fill)


def _classify(sql: str) -> str:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head in ("INSERT", "UPDATE", "DELETE"):
        return "write"
    if head in ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"):
        return "transaction"
    return "read"


def fixtures(info: dict) -> dict:
    start, end = info["totp"]
    small = info["users"] < 10_000
    template = _token_step_template(username(info["probe"][0]), info["password"])
    users = list(User.objects.filter(username__gte=username(start)).order_by("username")[: (end - start) if small else 15_000])
    sessions = _sessions(template, users, 3 if small else 1)
    # Count one token step, the whole request, on the second probe user.
    probe = User.objects.get(username=username(info["probe"][0] + 1))
    key = _sessions(template, [probe], 1)[probe.username][0]
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = key
    device = TOTPDevice.objects.get(user=probe)
    code = f"{otp_totp(device.bin_key, step=30, t0=0, digits=6):06d}"
    with CaptureQueriesContext(connection) as ctx:
        r = client.post(LOGIN, {"login_view-current_step": "token", "token-otp_token": code})
    stmts = [q["sql"] for q in ctx.captured_queries]
    kinds = [_classify(s) for s in stmts]
    TOTPDevice.objects.filter(user=probe).update(last_t=-1)
    return {
        "totpPage": sessions,
        "pwd": [username(i) for i in range(*info["pwd"])],
        "pwdTotp": [u.username for u in users],
        "csrf": get_random_string(32),
        "pageRequestQueries": {
            "status": r.status_code,
            "statements": sum(1 for k in kinds if k != "transaction"),
            "writes": kinds.count("write"),
            "transactionControl": kinds.count("transaction"),
            "sql": [s[:240] for s in stmts],
        },
    }


def main(argv=None) -> int:
    return prepare_main(peer="django-two-factor-auth", seed=seed, fixtures=fixtures, argv=argv)


if __name__ == "__main__":
    sys.exit(main())

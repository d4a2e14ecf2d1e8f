"""The allauth peer's seeding (runs in bench/peers/allauth/.venv).

    python prepare.py seed --users N --secret BASE32 --password P --out seed.json

N users ``u0000000``... written with ``bulk_create``, all with ONE precomputed Argon2id hash
(the same parameters as Gatehouse, allauth_project/hashers.py). Users from ``PWD_USERS`` on
have two confirmed allauth authenticators, as allauth's own activation flow writes them:
``totp`` with the known secret (so a client computes codes) and ``recovery_codes`` with one
known seed (the codes are in seed.json; allauth derives them from the seed). The first
``PWD_USERS`` users have none: the password step alone signs them in.
"""
import argparse
import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allauth_project.settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
django.setup()

from allauth.mfa.models import Authenticator  # noqa: E402
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes  # noqa: E402
from allauth.mfa.utils import encrypt  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

PWD_USERS = 50  # u0000000..u0000049: no authenticator
# One recovery-code seed for every user (allauth makes a random one per user): the codes
# are known to the client, and verifying one costs the same whatever the seed.
RECOVERY_SEED = "5eed" * 20
BATCH = 5000


def username(i: int) -> str:
    return f"u{i:07d}"


def seed(n: int, secret: str, password: str) -> dict:
    t0 = time.perf_counter()
    pw_hash = make_password(password)
    now = timezone.now()
    for start in range(0, n, BATCH):
        User.objects.bulk_create(
            [User(username=username(i), email=f"{username(i)}@bench.example", password=pw_hash, date_joined=now)
             for i in range(start, min(n, start + BATCH))],
            batch_size=BATCH,
        )
    totp_data = {"secret": encrypt(secret)}
    rc_data = {"seed": encrypt(RECOVERY_SEED), "used_mask": 0}
    ids = list(User.objects.filter(username__gte=username(PWD_USERS)).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        Authenticator.objects.bulk_create(
            [Authenticator(user_id=pk, type=Authenticator.Type.TOTP, data=totp_data, created_at=now) for pk in chunk]
            + [Authenticator(user_id=pk, type=Authenticator.Type.RECOVERY_CODES, data=rc_data, created_at=now) for pk in chunk],
            batch_size=BATCH,
        )
    codes = RecoveryCodes(Authenticator.objects.filter(type=Authenticator.Type.RECOVERY_CODES).first()).generate_codes() if ids else []
    return {
        "users": User.objects.count(),
        "authenticators": {t: Authenticator.objects.filter(type=t).count() for t in (Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES)},
        "pwd": [0, PWD_USERS],
        "totp": [PWD_USERS, n],
        "password": password,
        "hashParams": pw_hash.split("$")[3],  # argon2$argon2id$v=19$m=19456,t=2,p=1$...
        "recoveryCodes": codes,
        "seedSeconds": round(time.perf_counter() - t0, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="prepare")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if User.objects.exists():
        print("the allauth peer's database is not empty; seed a fresh one", file=sys.stderr)
        return 2
    with transaction.atomic():
        result = seed(args.users, args.secret, args.password)
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

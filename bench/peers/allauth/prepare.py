"""The allauth peer's seeding (runs in bench/peers/allauth/.venv).

    python prepare.py seed --users N --secret BASE32 --password P --out seed.json
    python prepare.py fixtures --seed seed.json --out fixtures.json

N users ``u0000000``... written with ``bulk_create``, all with ONE precomputed Argon2id hash
(the same parameters as Gatehouse, allauth_project/hashers.py). Users from ``PWD_USERS`` on
have two confirmed allauth authenticators, as allauth's own activation flow writes them:
``totp`` with the known secret (so a client computes codes) and ``recovery_codes`` with one
known seed (the codes are in seed.json; allauth derives them from the seed). The first
``PWD_USERS`` users have none: the password step alone signs them in.

``fixtures`` (right before the server starts: a pending sign-in lives 15 min): sessions
waiting at the 2FA step, made as the first peer's are (the real password step once, its
session copied per user), for the page (``sessionid``) and the app client
(``X-Session-Token``); signed-in app sessions with one refresh token each (the real API
sign-in); and the page's CSRF token.
"""
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "allauth_project.settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/peers: what both peers share
django.setup()

from peer_seed import PWD_USERS, copy_sessions, prepare_main, username  # noqa: E402

from allauth.account.utils import user_pk_to_url_str  # noqa: E402
from allauth.mfa.models import Authenticator  # noqa: E402
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes  # noqa: E402
from allauth.mfa.utils import encrypt  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402
from django.utils import timezone  # noqa: E402

# One recovery-code seed for every user (allauth makes a random one per user): the codes
# are known to the client, and verifying one costs the same whatever the seed.
RECOVERY_SEED = "5eed" * 20
BATCH = 5000


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


APP = "/_allauth/app/v1"
REFRESH_SESSIONS = 96  # refresh-token chains: a leg spends up to one per connection (those in flight at its end)


def _pending_template(name: str, password: str, *, api: bool) -> dict:
    """The session of a user who has passed the password step, made by allauth's own view once."""
    client = Client(HTTP_HOST="127.0.0.1")
    if api:
        r = client.post(f"{APP}/auth/login", {"username": name, "password": password}, content_type="application/json")
        if r.status_code != 401:
            raise SystemExit(f"the allauth API password step did not reach the 2FA step (HTTP {r.status_code})")
        return dict(SessionStore(session_key=r.json()["meta"]["session_token"]).load())
    r = client.post("/accounts/login/", {"login": name, "password": password})
    if r.status_code != 302 or not r["Location"].endswith("/accounts/2fa/authenticate/"):
        raise SystemExit(f"the allauth page password step did not reach the 2FA step (HTTP {r.status_code})")
    return dict(client.session.items())


def _pending_sessions(template: dict, users: list[User], per_user: int) -> dict[str, list[str]]:
    def fill(data, user):
        data["account_login"].update(user_pk=user_pk_to_url_str(user), initiated_at=time.time())  # base 36

    return copy_sessions(template, users, per_user, fill)


def fixtures(info: dict) -> dict:
    start, end = info["totp"]
    probe, password = username(start), info["password"]
    users = list(User.objects.filter(username__gt=probe, username__lt=username(end)).order_by("username"))
    refresh = []
    for i in range(REFRESH_SESSIONS):  # signed in through the API: a session, and its first refresh token
        r = Client(HTTP_HOST="127.0.0.1").post(f"{APP}/auth/login", {"username": username(i % PWD_USERS), "password": password}, content_type="application/json")
        refresh.append(r.json()["meta"]["refresh_token"])
    return {
        "totpPage": _pending_sessions(_pending_template(probe, password, api=False), users, 3),
        "totpApi": _pending_sessions(_pending_template(probe, password, api=True), users, 3),
        "refresh": refresh,
        "pwd": [username(i) for i in range(*info["pwd"])],
        "csrf": get_random_string(32),
    }


def main(argv=None) -> int:
    return prepare_main(peer="allauth", seed=seed, fixtures=fixtures, argv=argv)


if __name__ == "__main__":
    sys.exit(main())

"""What both peers' seeding shares (their prepare.py, after ``django.setup()``): user names,
the users without a second factor, sessions copied from one made by the real view, and the
``seed`` / ``fixtures`` command line."""
import argparse
import copy
import json
import sys
import time
from datetime import timedelta

PWD_USERS = 50  # u0000000..u0000049: no second factor, the password step alone signs them in


def username(i: int) -> str:
    return f"u{i:07d}"


def copy_sessions(template: dict, users: list, per_user: int, fill) -> dict[str, list[str]]:
    """``per_user`` sessions per user, each a copy of ``template`` (a session the peer's own view
    made once, at the second-factor step) that ``fill(data, user)`` points at that user.
    Returns each user's session keys."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    store = SessionStore()
    expire = timezone.now() + timedelta(hours=2)
    rows, out = [], {}
    for user in users:
        for _ in range(per_user):
            data = copy.deepcopy(template)
            fill(data, user)
            key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
            rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
            out.setdefault(user.username, []).append(key)
    Session.objects.bulk_create(rows, batch_size=2000)
    return out


def now() -> float:
    return time.time()


def prepare_main(*, peer: str, seed, fixtures, argv=None) -> int:
    """A peer's prepare.py command line: ``seed`` fills a fresh database (refusing one that
    has users), ``fixtures`` derives the scenarios' inputs from a seed; each writes JSON."""
    from django.contrib.auth.models import User
    from django.db import transaction

    parser = argparse.ArgumentParser(prog="prepare")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("seed")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("fixtures")
    p.add_argument("--seed", required=True)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "seed":
        if User.objects.exists():
            print(f"the {peer} peer's database is not empty; the bench script creates a fresh one", file=sys.stderr)
            return 2
        with transaction.atomic():
            result = seed(args.users, args.secret, args.password)
    else:
        with open(args.seed) as f:
            result = fixtures(json.load(f))
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0

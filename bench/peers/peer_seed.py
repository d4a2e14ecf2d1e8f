"""What both peers' seeding shares (their prepare.py, after ``django.setup()``): user names,
the users without a second factor, and sessions copied from one made by the real view."""
import copy
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

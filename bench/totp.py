"""TOTP codes of the one seeded secret, and who may use which time step next (RFC 6238)."""
from __future__ import annotations

import hashlib
import hmac
import struct
import time
from base64 import b32decode
from collections import deque

from bench.httpload import Exhausted

class Totp:
    """Codes of the one seeded secret, and who may use which time step next.

    RFC 6238 replay protection lets a user pass one code per time step, within ±1 step of
    now: so a user has at most 3 codes in a burst, then one per 30 s. The scheduler hands
    each user the earliest step still open to them, and the run ends early when every user
    of the pool is spent (at 1,000 users the pool, not the server, can be the limit)."""

    def __init__(self, secret: str):
        self.key = b32decode(secret)
        self.codes: dict[int, str] = {}

    def code(self, step: int) -> str:
        if step not in self.codes:
            digest = hmac.new(self.key, struct.pack(">Q", step), hashlib.sha1).digest()
            offset = digest[-1] & 0x0F
            value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
            self.codes[step] = f"{value:06d}"
        return self.codes[step]


class TotpPool:
    """One scenario's TOTP users on one system, handed out round-robin. A pool lives as long
    as its system, so a scenario's second leg there goes on where the first stopped, and
    ``last`` (one per system, shared by all its pools) keeps every user/step it handed out.
    ``left(user)``: how many more codes that user can take (pending sessions left, say); None: no limit."""

    def __init__(self, users: list[str], last: dict[str, int], left=None):
        self.users = deque(users)
        self.last = last  # shared per system: the server's replay state, as the client knows it
        self.left = left

    @staticmethod
    def _window(now: float, within: float = 0.0) -> tuple[int, int]:
        """The steps a code may be for now (RFC 6238, one step either side): an old step that
        falls out of the window within ``within`` seconds (or 2 s, to be safe) is not used."""
        cur = int(now // 30)
        return (cur - 1 if now % 30 + max(within, 2.0) < 30 else cur), cur + 1

    def take(self, within: float = 0.0) -> tuple[str, int]:
        """The next user and the step of the code they send: a step still valid ``within`` seconds from now."""
        low, high = self._window(time.time(), within)
        for _ in range(len(self.users)):
            user = self.users.popleft()
            self.users.append(user)
            step = max(self.last.get(user, 0) + 1, low)
            if step <= high and (self.left is None or self.left(user) > 0):
                self.last[user] = step
                return user, step
        raise Exhausted()

    def take_many(self, n: int, within: float) -> list[tuple[str, int]]:
        """Up to ``n`` (user, step) pairs, each still valid ``within`` seconds from now (for a wrk leg's list)."""
        out = []
        try:
            while len(out) < n:
                out.append(self.take(within))
        except Exhausted:
            pass
        return out

    def open_codes(self, within: float) -> int:
        """How many codes ``take`` can hand out from now on and for the next ``within`` seconds
        without waiting for a new time step (each user once per step)."""
        low, high = self._window(time.time(), within)
        total = 0
        for user in self.users:
            n = max(high - max(self.last.get(user, 0) + 1, low) + 1, 0)
            total += n if self.left is None else min(n, self.left(user))
        return total


# --- the email sink --------------------------------------------------------------------------

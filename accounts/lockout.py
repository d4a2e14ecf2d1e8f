"""The lockout policy: the one home of "count a failure, lock at the limit, reset on success".

Counting is a single conditional UPDATE (``F() + 1`` guarded by "not locked"), never
read-compare-save, so parallel requests on any number of processes or hosts cannot push
an account past its limit. An expired lock restarts both counters in the same statement.
Works for any ``LockoutState`` model: ``User`` and ``UnknownUsername``. The callers (the
password step, the code check) hold the row's lock while they judge, and write the count
and its audit event in one transaction.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from typing import Literal

from django.db.models import Case, DateTimeField, F, IntegerField, Q, Value, When
from django.utils import timezone

from accounts.models import LockoutState

Counter = Literal["password", "code"]
_FIELDS = {"password": "failed_password_count", "code": "failed_code_count"}


@dataclass(frozen=True)
class Attempt:
    """The outcome of counting one failure."""

    allowed: bool  # False: the account was already locked; nothing was counted
    count: int  # failures on this counter, this one included
    locked_until: datetime | None  # set when this failure reached the limit
    limit: int

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)


def seconds_left(locked_until: datetime | None, *, now: datetime | None = None) -> int:
    """Whole seconds until the lock lifts (0 when not locked)."""
    if locked_until is None:
        return 0
    return max(ceil((locked_until - (now or timezone.now())).total_seconds()), 0)


def is_locked(state: LockoutState, *, now: datetime | None = None) -> bool:
    return seconds_left(state.locked_until, now=now) > 0


def locked_now() -> Q:
    """``is_locked`` as a filter, for lists of rows."""
    return Q(locked_until__gt=timezone.now())


def register_failure(
    *, model: type[LockoutState], pk, counter: Counter, limit: int, lockout_seconds: int
) -> Attempt:
    """Count one failure in one atomic UPDATE, conditional on the row not being locked.

    Returns ``allowed=False`` without counting when the row is locked. When the count
    reaches ``limit`` the row is locked for ``lockout_seconds``. A lock that has expired
    restarts both counters, so this failure is the first of a new series. Every right-hand
    side of the UPDATE reads the row as it was, so "a lock is set" means "an expired lock".
    """
    now = timezone.now()
    field = _FIELDS[counter]
    other = _FIELDS["code" if counter == "password" else "password"]
    lock_at = now + timedelta(seconds=lockout_seconds)
    expired = Q(locked_until__isnull=False)
    counted = model.objects.filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now), pk=pk).update(
        **{
            field: Case(When(expired, then=Value(1)), default=F(field) + 1, output_field=IntegerField()),
            other: Case(When(expired, then=Value(0)), default=F(other), output_field=IntegerField()),
            "locked_until": Case(
                When(expired, then=Value(lock_at if limit <= 1 else None)),
                When(**{f"{field}__gte": limit - 1}, then=Value(lock_at)),
                default=Value(None),
                output_field=DateTimeField(),
            ),
        }
    )
    row = model.objects.filter(pk=pk).values(field, "locked_until").first() or {field: 0, "locked_until": None}
    return Attempt(allowed=bool(counted), count=row[field], locked_until=row["locked_until"], limit=limit)


def reset(*, model: type[LockoutState], pk) -> None:
    """A whole sign-in succeeded (every factor), or an admin unlocks: both counters back to
    zero and no lock. Writes only when there is something to clear."""
    model.objects.filter(
        Q(failed_password_count__gt=0) | Q(failed_code_count__gt=0) | Q(locked_until__isnull=False), pk=pk
    ).update(failed_password_count=0, failed_code_count=0, locked_until=None)


def password_passed(*, state: LockoutState) -> None:
    """The right password, judged while holding the row's lock on ``state`` (read with it, so
    current) and the account not locked: the password counter back to zero. The code counter
    stays, so whoever has the password earns no fresh code attempts by signing in again (a
    right code, ``reset``, or the end of a lockout clears it). A lock that has expired ends
    here, with both its counters. Writes only what must change (a clean row: nothing)."""
    if state.locked_until is not None:
        changes = {"failed_password_count": 0, "failed_code_count": 0, "locked_until": None}
    elif state.failed_password_count:
        changes = {"failed_password_count": 0}
    else:
        return
    type(state).objects.filter(pk=state.pk).update(**changes)
    for field, value in changes.items():
        setattr(state, field, value)


def password_lock_lift(*, model: type[LockoutState], pk, code_limit: int) -> None:
    """A password reset (the mailbox proved, not the second factor): the password counter back
    to zero and a lock lifted, unless the lock is the codes' (their counter at ``code_limit``,
    the only way a code failure locks), which stays until it ends or an admin unlocks. The
    code counter stays as it is either way."""
    model.objects.filter(pk=pk, failed_code_count__lt=code_limit).filter(
        Q(failed_password_count__gt=0) | Q(locked_until__isnull=False)
    ).update(failed_password_count=0, locked_until=None)


def unlock(*, model: type[LockoutState], pk) -> None:
    """An admin's unlock: same as a success."""
    reset(model=model, pk=pk)

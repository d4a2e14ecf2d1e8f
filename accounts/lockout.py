"""The lockout policy: the one home of "count a failure, lock at the limit, reset on success".

Counting is a single conditional UPDATE (``F() + 1`` guarded by "not locked"), never
read-compare-save, so parallel requests on any number of processes or hosts cannot push
an account past its limit. An expired lock restarts both counters in the same statement.
Works for any ``LockoutState`` model: ``User`` and ``UnknownLogin``.
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
    """The outcome of reserving one attempt."""

    allowed: bool  # False: the account was already locked; nothing was counted
    count: int  # failures on this counter, this one included
    locked_until: datetime | None  # set when this attempt reached the limit
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


def _not_locked(now: datetime) -> Q:
    return Q(locked_until__isnull=True) | Q(locked_until__lte=now)


def register_failure(
    *, model: type[LockoutState], pk, counter: Counter, limit: int, lockout_seconds: int
) -> Attempt:
    """Count one failure (or reserve one attempt before judging it) in one atomic UPDATE.

    Returns ``allowed=False`` without counting when the row is locked. When the count
    reaches ``limit`` the row is locked for ``lockout_seconds``. A lock that has expired
    restarts both counters, so this failure is the first of a new series.
    """
    now = timezone.now()
    field = _FIELDS[counter]
    other = _FIELDS["code" if counter == "password" else "password"]
    lock_at = now + timedelta(seconds=lockout_seconds)
    expired = Q(locked_until__isnull=False)  # rows passing the guard with a lock have an expired one
    updated = model.objects.filter(Q(pk=pk) & _not_locked(now)).update(
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
    if not updated:
        return Attempt(allowed=False, count=row[field], locked_until=row["locked_until"], limit=limit)
    return Attempt(allowed=True, count=row[field], locked_until=row["locked_until"], limit=limit)


def refund(*, model: type[LockoutState], pk, counter: Counter, attempt: Attempt) -> None:
    """Give back an attempt reserved with ``register_failure`` that turned out not to be judged
    (the mail server was down, say): one decrement, and the lock it caused is lifted."""
    if not attempt.allowed:
        return
    field = _FIELDS[counter]
    changes = {field: Case(When(**{f"{field}__gt": 0}, then=F(field) - 1), default=Value(0), output_field=IntegerField())}
    if attempt.locked_until is not None:
        changes["locked_until"] = Value(None)
    model.objects.filter(pk=pk).update(**changes)


def reset(*, model: type[LockoutState], pk) -> None:
    """A success: both counters back to zero and no lock. Writes only when there is something to clear."""
    model.objects.filter(pk=pk).filter(
        Q(failed_password_count__gt=0) | Q(failed_code_count__gt=0) | Q(locked_until__isnull=False)
    ).update(failed_password_count=0, failed_code_count=0, locked_until=None)


def unlock(*, model: type[LockoutState], pk) -> None:
    """An admin's unlock: same as a success."""
    reset(model=model, pk=pk)

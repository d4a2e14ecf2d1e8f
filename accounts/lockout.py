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

from django.db import connections, router
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import LockoutState
from config.sql import prepared_cursor

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


def register_failure(
    *, model: type[LockoutState], pk, counter: Counter, limit: int, lockout_seconds: int
) -> Attempt:
    """Count one failure (or reserve one attempt before judging it) in one atomic UPDATE.

    Returns ``allowed=False`` without counting when the row is locked (then a second
    statement reads the lock). When the count
    reaches ``limit`` the row is locked for ``lockout_seconds``. A lock that has expired
    restarts both counters, so this failure is the first of a new series.
    """
    now = timezone.now()
    field = _FIELDS[counter]
    other = _FIELDS["code" if counter == "password" else "password"]
    lock_at = now + timedelta(seconds=lockout_seconds)
    # One statement, one round trip: the conditional UPDATE returns the row it wrote. Every
    # right-hand side reads the row as it was, so "a lock is set" means "an expired lock".
    conn = connections[router.db_for_write(model)]
    qn = conn.ops.quote_name
    f, o, lu = qn(field), qn(other), qn("locked_until")
    opts = model._meta
    as_db = opts.get_field("locked_until")
    sql = (
        f"UPDATE {qn(opts.db_table)} SET "
        f"{f} = CASE WHEN {lu} IS NOT NULL THEN 1 ELSE {f} + 1 END, "
        f"{o} = CASE WHEN {lu} IS NOT NULL THEN 0 ELSE {o} END, "
        f"{lu} = CASE WHEN {lu} IS NOT NULL THEN %s WHEN {f} >= %s THEN %s ELSE NULL END "
        f"WHERE {qn(opts.pk.column)} = %s AND ({lu} IS NULL OR {lu} <= %s)"
    )
    # RETURNING needs PostgreSQL or SQLite >= 3.35; an older SQLite reads the row it wrote.
    returning = conn.features.can_return_columns_from_insert
    params = [
        as_db.get_db_prep_value(lock_at if limit <= 1 else None, conn),
        limit - 1,
        as_db.get_db_prep_value(lock_at, conn),
        opts.pk.get_db_prep_value(pk, conn),
        as_db.get_db_prep_value(now, conn),
    ]
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql + (f" RETURNING {f}, {lu}" if returning else ""), params)
        if returning:
            written = cursor.fetchone()
        elif cursor.rowcount:
            cursor.execute(f"SELECT {f}, {lu} FROM {qn(opts.db_table)} WHERE {qn(opts.pk.column)} = %s", params[3:4])
            written = cursor.fetchone()
        else:
            written = None
    if written is not None:
        return Attempt(allowed=True, count=written[0], locked_until=_as_datetime(written[1], conn), limit=limit)
    row = model.objects.filter(pk=pk).values(field, "locked_until").first() or {field: 0, "locked_until": None}
    return Attempt(allowed=False, count=row[field], locked_until=row["locked_until"], limit=limit)


def _as_datetime(value, conn) -> datetime | None:
    """A timestamp as a raw cursor gives it back (SQLite: naive, or text) → an aware datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(value)
    return timezone.make_aware(value, conn.timezone) if timezone.is_naive(value) else value


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
    """A whole sign-in succeeded (every factor), or an admin unlocks: both counters back to
    zero and no lock. Writes only when there is something to clear."""
    conn = connections[router.db_for_write(model)]
    opts = model._meta
    sql = (
        f'UPDATE "{opts.db_table}" SET "failed_password_count" = 0, "failed_code_count" = 0, "locked_until" = NULL '
        f'WHERE "{opts.pk.column}" = %s AND ("failed_password_count" > 0 OR "failed_code_count" > 0 OR "locked_until" IS NOT NULL)'
    )
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql, [opts.pk.get_db_prep_value(pk, conn)])


def password_passed(*, model: type[LockoutState], pk, attempt: Attempt) -> None:
    """The right password (``attempt`` reserved it, counted before the hash was checked):
    its counter back to zero, and the lock this attempt set if it reached the limit. The code
    counter stays, so whoever has the password earns no fresh code attempts by signing in
    again (a right code, ``reset``, or the end of a lockout clears it); so does a lock that a
    parallel failure set meanwhile."""
    conn = connections[router.db_for_write(model)]
    opts = model._meta
    sets, params = '"failed_password_count" = 0', []
    if attempt.locked_until is not None:
        sets += ', "locked_until" = CASE WHEN "locked_until" = %s THEN NULL ELSE "locked_until" END'
        params.append(opts.get_field("locked_until").get_db_prep_value(attempt.locked_until, conn))
    sql = f'UPDATE "{opts.db_table}" SET {sets} WHERE "{opts.pk.column}" = %s AND "failed_password_count" > 0'
    with prepared_cursor(conn) as cursor:
        cursor.execute(sql, [*params, opts.pk.get_db_prep_value(pk, conn)])


def unlock(*, model: type[LockoutState], pk) -> None:
    """An admin's unlock: same as a success."""
    reset(model=model, pk=pk)

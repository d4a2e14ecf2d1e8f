"""accounts.lockout: one conditional UPDATE per failure; the lock, its expiry and reset."""
from datetime import datetime, timedelta, timezone as dt_timezone


from accounts import lockout
from accounts.errors import InvalidCode, LockedOut
from accounts.models import UnknownUsername, User
from tests.conftest import freeze_at

NOW = datetime(2030, 8, 8, 8, 0, 0, tzinfo=dt_timezone.utc)


frozen = freeze_at(NOW)


def fail(user, counter="password", limit=3, seconds=60):
    return lockout.register_failure(model=User, pk=user.pk, counter=counter, limit=limit, lockout_seconds=seconds)


def test_failures_count_up_and_lock_at_the_limit(user, frozen):
    attempts = [fail(user) for _ in range(3)]
    assert [a.count for a in attempts] == [1, 2, 3]
    assert [a.remaining for a in attempts] == [2, 1, 0]
    assert [a.locked_until for a in attempts] == [None, None, NOW + timedelta(seconds=60)]
    assert all(a.allowed for a in attempts)


def test_a_locked_row_is_not_counted(user, frozen):
    for _ in range(3):
        fail(user)
    refused = fail(user)
    assert not refused.allowed and refused.count == 3
    user.refresh_from_db()
    assert user.failed_password_count == 3


def test_an_expired_lock_restarts_both_counters(user, frozen):
    for _ in range(3):
        fail(user)
    User.objects.filter(pk=user.pk).update(failed_code_count=2)
    frozen.shift(60)
    attempt = fail(user)
    assert attempt.allowed and attempt.count == 1 and attempt.locked_until is None
    user.refresh_from_db()
    assert (user.failed_password_count, user.failed_code_count) == (1, 0)


def test_a_limit_of_one_locks_at_once_even_after_an_expired_lock(user, frozen):
    assert fail(user, limit=1).locked_until == NOW + timedelta(seconds=60)
    frozen.shift(61)
    assert fail(user, limit=1).locked_until is not None


def test_counters_are_separate(user, frozen):
    fail(user, counter="password")
    fail(user, counter="code")
    fail(user, counter="code")
    user.refresh_from_db()
    assert (user.failed_password_count, user.failed_code_count) == (1, 2)


def test_reset_clears_everything(user, frozen):
    for _ in range(3):
        fail(user)
    lockout.reset(model=User, pk=user.pk)
    user.refresh_from_db()
    assert (user.failed_password_count, user.failed_code_count, user.locked_until) == (0, 0, None)


def test_seconds_left_and_is_locked(user, frozen):
    assert lockout.seconds_left(None) == 0
    assert lockout.seconds_left(NOW + timedelta(seconds=10.2)) == 11
    assert lockout.seconds_left(NOW - timedelta(seconds=5)) == 0
    user.locked_until = NOW + timedelta(seconds=1)
    assert lockout.is_locked(user)
    assert not lockout.is_locked(user, now=NOW + timedelta(seconds=1))


def test_works_for_unknown_usernames_too(tenant, frozen):
    row = UnknownUsername.objects.create(tenant=tenant, username="ghost")
    for _ in range(2):
        lockout.register_failure(model=UnknownUsername, pk=row.pk, counter="password", limit=2, lockout_seconds=30)
    row.refresh_from_db()
    assert row.locked_until == NOW + timedelta(seconds=30)


def test_unlock_lifts_a_lock(user, frozen):
    from accounts.services import user_unlock

    for _ in range(3):
        fail(user)
    user_unlock(user=user)
    assert user.locked_until is None and user.failed_password_count == 0


def test_error_messages_carry_the_wait():
    assert LockedOut(300).extra == {"retry_after": 300}
    assert LockedOut(0).extra == {"retry_after": 1}
    assert "5 min" in LockedOut(300).message and "45 s" in LockedOut(45).message
    assert InvalidCode(1).extra == {"attempts_remaining": 1}
    assert (LockedOut.code, LockedOut.status, InvalidCode.code, InvalidCode.status) == ("locked_out", 429, "invalid_code", 401)

"""Parallel attempts on a real database (PostgreSQL): threads, each with its own connection.

Like django-otp's ConcurrencyTestCase: N requests at once must not count more than the
tenant's limit, and one valid TOTP code must be accepted exactly once.
"""
import threading
import time
from collections import Counter
from datetime import datetime, timezone as dt_timezone

import pytest

from accounts.models import AuditEvent, MfaMethod, UnknownUsername, User
from accounts.services import password_sign_in
from mfa import totp
from mfa.verify import code_verify
from tests.conftest import FIXED_SECRET, PASSWORD, confirm_totp, in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 20
LIMIT = 3


def wrong_code_for(step: int) -> str:
    near = {totp.code_at_step(FIXED_SECRET, step + d) for d in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def test_parallel_wrong_codes_count_no_more_than_the_limit(postgres, tenant_factory, user_factory):
    tenant = tenant_factory("race", "Race", mfa_max_attempts=LIMIT, lockout_seconds=600)
    user = user_factory("racer", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    wrong = wrong_code_for(totp.step_at(time.time()))

    outcomes = in_parallel(THREADS, lambda: code_verify(user=User.objects.select_related("tenant").get(pk=user.pk), code=wrong))

    # The first LIMIT-1 are judged wrong; the LIMIT-th is judged wrong and locks (answered
    # locked_out); every other one meets the lock and is not judged at all.
    assert outcomes == Counter({"invalid_code": LIMIT - 1, "locked_out": THREADS - LIMIT + 1})
    user.refresh_from_db()
    assert user.failed_code_count == LIMIT and user.locked_until is not None
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.CODE_FAILURE).count() == LIMIT
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.LOCKOUT).count() == 1


def test_parallel_wrong_passwords_count_no_more_than_the_limit(postgres, tenant_factory, user_factory):
    tenant = tenant_factory("race-pw", "Race", password_max_attempts=LIMIT, lockout_seconds=600)
    user = user_factory("runner", tenant=tenant)

    outcomes = in_parallel(THREADS, lambda: password_sign_in(tenant=tenant, username="runner", password="wrong-password-x"))

    # Passwords: the attempt that locks still answers invalid_credentials (it was judged).
    assert outcomes == Counter({"invalid_credentials": LIMIT, "locked_out": THREADS - LIMIT})
    user.refresh_from_db()
    assert user.failed_password_count == LIMIT and user.locked_until is not None
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.SIGN_IN_FAILURE).count() == LIMIT


def test_parallel_guesses_at_an_unknown_username_count_no_more_than_the_limit(postgres, tenant_factory):
    tenant = tenant_factory("race-ghost", "Race", password_max_attempts=LIMIT, lockout_seconds=600)

    outcomes = in_parallel(THREADS, lambda: password_sign_in(tenant=tenant, username="ghost", password="wrong-password-x"))

    assert outcomes == Counter({"invalid_credentials": LIMIT, "locked_out": THREADS - LIMIT})
    row = UnknownUsername.objects.get(tenant=tenant, username="ghost")
    assert row.failed_password_count == LIMIT and row.locked_until is not None


def test_the_right_password_in_parallel_with_wrong_ones_never_exceeds_the_limit(postgres, tenant_factory, user_factory):
    tenant = tenant_factory("race-mix", "Race", password_max_attempts=LIMIT, lockout_seconds=600)
    user = user_factory("mixer", tenant=tenant)
    turn = iter(range(THREADS))
    lock = threading.Lock()

    def attempt():
        with lock:
            i = next(turn)
        password_sign_in(tenant=tenant, username="mixer", password=PASSWORD if i % 2 else "wrong-password-x")

    outcomes = in_parallel(THREADS, attempt)
    assert not any(k.startswith("crash") for k in outcomes), outcomes
    user.refresh_from_db()
    assert user.failed_password_count <= LIMIT
    assert outcomes["invalid_credentials"] == AuditEvent.objects.filter(
        user=user, kind=AuditEvent.Kind.SIGN_IN_FAILURE
    ).count()


def test_a_valid_code_sent_by_eight_threads_is_accepted_once(postgres, tenant_factory, user_factory, time_machine):
    tenant = tenant_factory("race-ok", "Race", mfa_max_attempts=100)
    user = user_factory("twice", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    time_machine.move_to(datetime(2030, 7, 7, 7, 7, 7, tzinfo=dt_timezone.utc), tick=False)  # one step for all
    code = totp.code_at_step(FIXED_SECRET, totp.step_at(time.time()))

    outcomes = in_parallel(8, lambda: code_verify(user=User.objects.select_related("tenant").get(pk=user.pk), code=code))

    # The seven others send the code last accepted: refused as already used, none counted.
    assert outcomes == Counter({"ok": 1, "code_already_used": 7})
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.REPLAY_REFUSED).count() == 7
    user.refresh_from_db()
    assert user.failed_code_count == 0 and user.locked_until is None


def test_parallel_right_passwords_never_leave_a_lock_behind(postgres, tenant_factory, user_factory):
    """Issue 15, item 3: with the count a few below the limit, parallel right passwords all
    sign in and leave no lock (each attempt is judged under the row's lock)."""
    tenant = tenant_factory("race-right", "Race", password_max_attempts=4, lockout_seconds=600)
    user = user_factory("rightful", tenant=tenant)
    User.objects.filter(pk=user.pk).update(failed_password_count=2)

    outcomes = in_parallel(6, lambda: password_sign_in(tenant=tenant, username="rightful", password=PASSWORD))

    assert outcomes == Counter({"ok": 6})
    user.refresh_from_db()
    assert (user.failed_password_count, user.locked_until) == (0, None)


def test_parallel_app_set_up_answers_one_secret(postgres, user_factory):
    """Issue 15, item 9: parallel set-up calls all answer the one secret that is stored."""
    from mfa import crypto
    from mfa.models import TOTPDevice
    from mfa.setup import totp_device_begin

    user = user_factory("setter", mfa_method=MfaMethod.TOTP)
    secrets, lock = [], threading.Lock()

    def begin():
        secret = totp_device_begin(user=user)
        with lock:
            secrets.append(secret)

    assert in_parallel(10, begin) == Counter({"ok": 10})
    stored = crypto.decrypt(TOTPDevice.objects.get(user=user).secret_encrypted)
    assert set(secrets) == {stored}

"""mfa.verify.code_verify: the one place a code is judged and counted (time passed in or frozen)."""
import re
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.errors import CodeAlreadyUsed, InvalidCode, InvalidMfaToken, LockedOut
from accounts.models import AuditEvent, MfaMethod
from accounts.services import sign_in_tokens_issue
from accounts.tokens import AMR_OTP, AMR_RECOVERY
from mfa import crypto, recovery, totp
from mfa.email_codes import email_code_send
from mfa.models import RecoveryCode, TOTPDevice
from mfa.recovery_codes import recovery_codes_left, recovery_codes_replace
from mfa.verify import code_verify
from tests.conftest import FIXED_SECRET, confirm_totp, freeze_at, run_notices

NOW = datetime(2030, 1, 15, 12, 0, 10, tzinfo=dt_timezone.utc)
T = NOW.timestamp()
STEP = totp.step_at(T)
Kind = AuditEvent.Kind


def code(offset: int = 0) -> str:
    return totp.code_at_step(FIXED_SECRET, STEP + offset)


frozen = freeze_at(NOW)


def kinds(user) -> list[str]:
    return list(AuditEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True))


def test_current_code_is_accepted_and_its_step_remembered(totp_user, frozen):
    result = code_verify(user=totp_user, code=code(), unix_time=T)
    assert result.amr == AMR_OTP and result.recovery_codes is None and not result.used_recovery_code
    assert TOTPDevice.objects.get(user=totp_user).last_step == STEP


def test_code_with_spaces_is_accepted(totp_user, frozen):
    c = code()
    assert code_verify(user=totp_user, code=f"{c[:3]} {c[3:]}", unix_time=T).amr == AMR_OTP


@pytest.mark.parametrize("offset", [-1, 1])
def test_one_step_of_drift_is_accepted(totp_user, frozen, offset):
    code_verify(user=totp_user, code=code(offset), unix_time=T)
    assert TOTPDevice.objects.get(user=totp_user).last_step == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_two_steps_of_drift_are_refused_and_counted(totp_user, frozen, offset):
    with pytest.raises(InvalidCode) as exc:
        code_verify(user=totp_user, code=code(offset), unix_time=T)
    assert exc.value.code == "invalid_code"
    assert exc.value.extra["attempts_remaining"] == totp_user.tenant.mfa_max_attempts - 1
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 1


def test_the_same_step_twice_is_refused_and_audited_as_replay(totp_user, frozen):
    code_verify(user=totp_user, code=code(), unix_time=T)
    with pytest.raises(CodeAlreadyUsed):
        code_verify(user=totp_user, code=code(), unix_time=T + 5)
    assert Kind.REPLAY_REFUSED in kinds(totp_user)
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0  # the code last accepted: not counted (item 11)


def test_an_older_step_after_a_newer_one_is_refused(totp_user, frozen):
    code_verify(user=totp_user, code=code(1), unix_time=T)  # the phone runs a step ahead
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code=code(0), unix_time=T)
    assert TOTPDevice.objects.get(user=totp_user).last_step == STEP + 1


def test_the_next_step_is_accepted_after_the_previous(totp_user, frozen):
    code_verify(user=totp_user, code=code(), unix_time=T)
    assert code_verify(user=totp_user, code=code(1), unix_time=T + 30).amr == AMR_OTP


@pytest.mark.parametrize("raw", ["", "abcdef", "12345", "1234567", "١٢٣٤٥٦", "x" * 64])
def test_malformed_codes_are_wrong_codes_and_counted(totp_user, frozen, raw):
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code=raw, unix_time=T)
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 1
    assert kinds(totp_user) == [Kind.CODE_FAILURE]


def test_attempts_remaining_counts_down_then_locks(user_factory, tenant_factory, frozen):
    tenant = tenant_factory(mfa_max_attempts=3, lockout_seconds=120)
    user = user_factory("locky", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    remaining = []
    for _ in range(2):
        with pytest.raises(InvalidCode) as exc:
            code_verify(user=user, code="000000" if code() != "000000" else "111111", unix_time=T)
        remaining.append(exc.value.extra["attempts_remaining"])
    assert remaining == [2, 1]
    with pytest.raises(LockedOut) as exc:
        code_verify(user=user, code="999999" if code() != "999999" else "111111", unix_time=T)
    assert exc.value.code == "locked_out" and exc.value.extra["retry_after"] == 120
    user.refresh_from_db()
    assert user.failed_code_count == 3 and user.locked_until == NOW + timedelta(seconds=120)
    assert kinds(user).count(Kind.LOCKOUT) == 1


def lock(user, n: int) -> None:
    for _ in range(n):
        with pytest.raises((InvalidCode, LockedOut)):
            code_verify(user=user, code="abcdef", unix_time=T)


def test_a_correct_code_is_refused_while_locked_with_the_time_left(user_factory, tenant_factory, frozen):
    tenant = tenant_factory(mfa_max_attempts=2, lockout_seconds=300)
    user = user_factory("held", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    lock(user, 2)
    frozen.shift(100)
    with pytest.raises(LockedOut) as exc:
        code_verify(user=user, code=code(3), unix_time=T + 100)
    assert exc.value.extra["retry_after"] == 200
    device = TOTPDevice.objects.get(user=user)
    assert device.last_step == 0  # a refused code is not even looked at
    user.refresh_from_db()
    assert user.failed_code_count == 2  # attempts while locked are not counted


def test_the_lock_lifts_after_the_period_and_success_resets_counters(user_factory, tenant_factory, frozen):
    tenant = tenant_factory(mfa_max_attempts=2, lockout_seconds=300)
    user = user_factory("waits", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    lock(user, 2)
    frozen.shift(301)
    assert code_verify(user=user, code=code(10), unix_time=T + 301).amr == AMR_OTP
    user.refresh_from_db()
    assert (user.failed_code_count, user.failed_password_count, user.locked_until) == (0, 0, None)


def test_after_the_lock_a_new_series_of_attempts_starts(user_factory, tenant_factory, frozen):
    tenant = tenant_factory(mfa_max_attempts=2, lockout_seconds=60)
    user = user_factory("again", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    lock(user, 2)
    frozen.shift(61)
    with pytest.raises(InvalidCode) as exc:
        code_verify(user=user, code="abcdef", unix_time=T + 61)
    assert exc.value.extra["attempts_remaining"] == 1


def test_success_resets_the_code_counter(totp_user, frozen):
    lock(totp_user, 3)
    code_verify(user=totp_user, code=code(), unix_time=T)
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0
    with pytest.raises(InvalidCode) as exc:
        code_verify(user=totp_user, code="abcdef", unix_time=T)
    assert exc.value.extra["attempts_remaining"] == totp_user.tenant.mfa_max_attempts - 1


def test_locking_emails_the_user_with_the_tenant_name(user_factory, tenant_factory, frozen):
    tenant = tenant_factory(name="Umbrella Ltd", mfa_max_attempts=1, lockout_seconds=90)
    user = user_factory("mailme", tenant=tenant, mfa_method=MfaMethod.TOTP, email="mailme@example.org")
    confirm_totp(user)
    mail.outbox.clear()
    lock(user, 1)
    run_notices()
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["mailme@example.org"]
    assert "Umbrella Ltd" in notice.subject and "Umbrella Ltd" in notice.body and "locked" in notice.subject.lower()


def test_a_secret_no_key_opens_is_a_refusal_not_a_crash(totp_user, frozen, settings):
    settings.MFA_ENCRYPTION_KEYS = ["a-key-that-did-not-encrypt-it"]
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code=code(), unix_time=T)


# --- recovery codes ---------------------------------------------------------------------------

def test_recovery_codes_are_ten_distinct_60_bit_codes(totp_user):
    codes = recovery_codes_replace(user=totp_user)
    assert len(codes) == 10 == len(set(codes))
    for c in codes:
        assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", c)
        assert recovery.normalize(c) is not None
    assert len(recovery.ALPHABET) ** recovery.LENGTH >= 2**60


def test_recovery_code_is_accepted_once(totp_user, frozen):
    codes = recovery_codes_replace(user=totp_user)
    result = code_verify(user=totp_user, code=codes[3], unix_time=T)
    assert result.used_recovery_code and result.amr == AMR_RECOVERY
    assert recovery_codes_left(user=totp_user) == 9
    with pytest.raises(CodeAlreadyUsed):  # the code last accepted
        code_verify(user=totp_user, code=codes[3], unix_time=T)
    code_verify(user=totp_user, code=codes[4], unix_time=T)
    with pytest.raises(InvalidCode):  # used, and no longer the last accepted: a wrong code
        code_verify(user=totp_user, code=codes[3], unix_time=T)
    assert Kind.RECOVERY_CODE_USED in kinds(totp_user)


def test_recovery_code_is_forgiving_about_case_hyphens_and_lookalikes(totp_user, frozen):
    codes = recovery_codes_replace(user=totp_user)
    typed = codes[0].upper().replace("-", " ").replace("0", "O").replace("1", "l")
    assert code_verify(user=totp_user, code=typed, unix_time=T).used_recovery_code


def test_regenerating_voids_the_old_set(totp_user, frozen):
    old = recovery_codes_replace(user=totp_user)
    new = recovery_codes_replace(user=totp_user)
    assert not set(old) & set(new)
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code=old[0], unix_time=T)
    assert code_verify(user=totp_user, code=new[0], unix_time=T).used_recovery_code
    assert Kind.RECOVERY_CODES_REGENERATED in kinds(totp_user)


def test_recovery_codes_are_stored_only_as_keyed_hashes(totp_user, settings):
    """Issue 15, item 10: a keyed hash (HMAC under a key from SECRET_KEY), not a salted
    SHA-256 that a database dump alone could grind through."""
    codes = recovery_codes_replace(user=totp_user)
    stored = set(RecoveryCode.objects.filter(user=totp_user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for c in codes:
        plain = recovery.normalize(c)
        assert not any(plain in h or c in h for h in stored)
        assert crypto.keyed_hash(f"{totp_user.pk}:{plain}", purpose="recovery-code") in stored
        assert not any("$" in h for h in stored)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40  # without the key, the codes are not found
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code=codes[0])


def test_a_recovery_code_is_not_accepted_while_setting_up_the_app(user_factory, frozen):
    user = user_factory("newbie", mfa_method=MfaMethod.TOTP)
    TOTPDevice.objects.create(user=user, secret_encrypted=crypto.encrypt(FIXED_SECRET))
    codes = recovery_codes_replace(user=user)
    with pytest.raises(InvalidCode):
        code_verify(user=user, code=codes[0], unix_time=T)


def test_a_code_confirms_set_up_and_returns_recovery_codes(user_factory, frozen):
    user = user_factory("fresh", mfa_method=MfaMethod.TOTP)
    TOTPDevice.objects.create(user=user, secret_encrypted=crypto.encrypt(FIXED_SECRET))
    mail.outbox.clear()
    result = code_verify(user=user, code=code(), unix_time=T)
    assert len(result.recovery_codes) == 10
    assert TOTPDevice.objects.get(user=user).confirmed_at is not None
    assert Kind.FACTOR_SETUP in kinds(user)
    run_notices()
    assert len(mail.outbox) == 1 and user.tenant.name in mail.outbox[0].subject


def test_a_user_without_a_device_is_refused(user_factory, frozen):
    user = user_factory("nodevice", mfa_method=MfaMethod.TOTP)
    with pytest.raises(InvalidCode):
        code_verify(user=user, code=code(), unix_time=T)


# --- one road: lock → allowed? → judge → reset or count ----------------------------------

def _sign_in(user):
    return lambda verified: sign_in_tokens_issue(user=user, amr=verified.amr)


def test_a_right_code_is_judged_under_the_row_lock_with_its_sign_in_in_one_commit(totp_user, frozen):
    with CaptureQueriesContext(connection) as queries:
        result = code_verify(user=totp_user, code=code(), unix_time=T, on_success=_sign_in(totp_user))
    if connection.vendor == "postgresql":
        assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries[:3])
    assert result.amr == AMR_OTP and result.handoff["refreshToken"]
    assert OutstandingToken.objects.filter(user=totp_user).count() == 1 and kinds(totp_user) == [Kind.SIGN_IN_SUCCESS]


def test_the_code_last_accepted_sent_again_is_already_used_and_not_counted(totp_user, frozen):
    """Issue 15, item 11: a double submit answers code_already_used and locks no one out."""
    code_verify(user=totp_user, code=code(), unix_time=T, on_success=_sign_in(totp_user))
    for _ in range(totp_user.tenant.mfa_max_attempts + 2):
        with pytest.raises(CodeAlreadyUsed) as exc:
            code_verify(user=totp_user, code=code(), unix_time=T, on_success=_sign_in(totp_user))
        assert exc.value.code == "code_already_used" and exc.value.status == 401
    assert OutstandingToken.objects.filter(user=totp_user).count() == 1
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0 and totp_user.locked_until is None


def test_an_older_used_code_is_a_counted_failure(totp_user, frozen):
    """Only the code last accepted is forgiven: an earlier step's code is a wrong code."""
    code_verify(user=totp_user, code=code(-1), unix_time=T)
    code_verify(user=totp_user, code=code(), unix_time=T)
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code=code(-1), unix_time=T)
    assert kinds(totp_user)[-2:] == [Kind.REPLAY_REFUSED, Kind.CODE_FAILURE]
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 1


def test_an_emailed_code_sent_again_after_use_is_already_used(email_user, frozen):
    email_code_send(user=email_user)
    sent = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    code_verify(user=email_user, code=sent)
    with pytest.raises(CodeAlreadyUsed):
        code_verify(user=email_user, code=sent)
    email_user.refresh_from_db()
    assert email_user.failed_code_count == 0


def test_a_pending_sign_in_completes_once(totp_user, frozen):
    """Issue 15, item 8: the pending sign-in (an mfaToken, a page's session) is bound to the
    user's sign_in_fingerprint, which the completed sign-in changes (last_login): a second
    code with the same pending sign-in is refused before it is judged, and not counted."""
    fingerprint = totp_user.sign_in_fingerprint()
    code_verify(user=totp_user, code=code(), unix_time=T, fingerprint=fingerprint, on_success=_sign_in(totp_user))
    with pytest.raises(InvalidMfaToken):
        code_verify(user=totp_user, code=code(1), unix_time=T, fingerprint=fingerprint, on_success=_sign_in(totp_user))
    assert OutstandingToken.objects.filter(user=totp_user).count() == 1
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0 and TOTPDevice.objects.get(user=totp_user).last_step == STEP


def test_a_refused_code_and_its_audit_event_are_one_commit(totp_user, frozen):
    """Issue 15, item 12: when the audit write fails, the count is not left behind."""
    wrong = "000000" if code() != "000000" else "111111"

    def fail_audit_insert(execute, sql, params, many, context):
        if "accounts_auditevent" in sql and sql.lstrip().upper().startswith("INSERT"):
            raise RuntimeError("the database went away")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail_audit_insert), pytest.raises(RuntimeError):
        code_verify(user=totp_user, code=wrong, unix_time=T)
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0 and kinds(totp_user) == []


def test_an_account_with_a_failure_counted_is_reset_by_a_right_code(totp_user, frozen):
    with pytest.raises(InvalidCode):
        code_verify(user=totp_user, code="000000" if code() != "000000" else "111111", unix_time=T)
    assert code_verify(user=totp_user, code=code(), unix_time=T).amr == AMR_OTP
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0

"""Second factors: set-up, sending email codes, and the one home of "verify a code and count
the failure" (django-otp's ``verify_token``: atomic, row lock, check allowed → verify →
reset or count), used by the pages and the API alike."""
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connections, router, transaction
from django.utils import timezone

from accounts import lockout
from accounts.audit import RequestContext, audit_record
from accounts.errors import EmailUnavailable, InvalidCode, LockedOut, ResendTooSoon
from accounts.models import AuditEvent, MfaMethod, User
from accounts.notifications import notify_user, render_mail
from accounts.tokens import AMR_OTP, AMR_RECOVERY
from config import sql
from mfa import crypto, recovery, totp
from mfa.models import EmailCode, RecoveryCode, TOTPDevice

logger = logging.getLogger(__name__)
Kind = AuditEvent.Kind


@dataclass(frozen=True)
class Verified:
    amr: list[str]
    recovery_codes: list[str] | None = None  # set when this finished an app set-up
    used_recovery_code: bool = False
    handoff: Any = None  # what ``code_verify``'s ``on_success`` returned (the API: the token body)


def mask_email(email: str) -> str:
    """``alice@example.com`` → ``a***@example.com``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def totp_confirmed(user: User) -> bool:
    """Asked by every app user's password step: one plain statement (``config.sql``)."""
    device = sql.get(TOTPDevice, user=user.pk)
    return device is not None and device.confirmed_at is not None


def enrollment_needed(user: User, *, enroll: str = "") -> str:
    """What the pending sign-in must do next: ``setup`` (app), ``choose``, ``verify`` or ``""`` (done)."""
    method = enroll or user.mfa_method
    if method == MfaMethod.TOTP:
        return "verify" if not enroll and totp_confirmed(user) else "setup"
    if method == MfaMethod.EMAIL:
        return "verify"
    return "choose" if user.tenant.mfa_required else ""


# --- authenticator app set-up --------------------------------------------------------------

def totp_device_begin(*, user: User) -> str:
    """The secret being set up (a new one unless set-up is already under way). Plain, for display only."""
    device = TOTPDevice.objects.filter(user=user).first()
    if device is not None and device.confirmed_at is None:
        try:
            return crypto.decrypt(device.secret_encrypted)
        except crypto.InvalidToken:
            pass
    if device is not None and device.confirmed_at is not None:
        raise ValueError("The app is already set up; reset MFA first.")
    secret = totp.generate_secret()
    TOTPDevice.objects.update_or_create(
        user=user, defaults={"secret_encrypted": crypto.encrypt(secret), "confirmed_at": None, "last_step": 0}
    )
    return secret


def totp_provisioning(*, user: User, secret: str) -> dict:
    issuer = user.tenant.effective_issuer
    uri = totp.otpauth_uri(secret=secret, issuer=issuer, username=user.username)
    return {
        "secret": secret,
        "otpauthUri": uri,
        "qrSvg": totp.qr_svg(uri, title=f"QR code to add {user.username} at {issuer} to an authenticator app"),
    }


def recovery_codes_replace(*, user: User) -> list[str]:
    """A new set of recovery codes; the old set stops working. Returns the plain codes, once."""
    codes = [recovery.generate_code() for _ in range(settings.MFA_RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(
            [RecoveryCode(user=user, code_hash=crypto.salted_hash(recovery.normalize(c))) for c in codes]
        )
    return codes


def recovery_codes_regenerate(*, user: User, ctx: RequestContext | None = None) -> list[str]:
    with transaction.atomic():
        codes = recovery_codes_replace(user=user)
        audit_record(kind=Kind.RECOVERY_CODES_REGENERATED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return codes


def recovery_codes_left(*, user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def mfa_factors_clear(*, user: User) -> None:
    """Forget every factor's state: app secret, recovery codes, pending email codes."""
    TOTPDevice.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    EmailCode.objects.filter(user=user).delete()


# --- emailed codes -------------------------------------------------------------------------

def email_code_send(*, user: User, ctx: RequestContext | None = None) -> dict:
    """Create and mail a code, honouring the tenant's resend gap across processes (row lock).

    Raises ``ResendTooSoon`` or ``EmailUnavailable`` (then nothing is written).
    Returns ``{"sentTo", "resendAfter"}``.
    """
    tenant = user.tenant
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        last = EmailCode.objects.filter(user=user).order_by("-created_at").values_list("created_at", flat=True).first()
        if last is not None and tenant.email_resend_seconds:
            wait = tenant.email_resend_seconds - (now - last).total_seconds()
            if wait > 0:
                raise ResendTooSoon(int(wait + 0.999))
        code = f"{secrets.randbelow(10**6):06d}"
        EmailCode.objects.create(
            user=user,
            code_hash=crypto.keyed_hash(f"{user.pk}:{code}", purpose="email-code"),
            created_at=now,
            expires_at=now + timedelta(seconds=tenant.email_code_ttl_seconds),
        )
        subject, body = render_mail(
            "mfa/email/code",
            {"user": user, "tenant": tenant, "code": code, "sent_at": now, "minutes": max(tenant.email_code_ttl_seconds // 60, 1), "seconds": tenant.email_code_ttl_seconds},
        )
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
        except Exception:
            logger.warning("could not email a sign-in code to user %s", user.pk)
            transaction.set_rollback(True)
            raise EmailUnavailable() from None
    return {"sentTo": mask_email(user.email), "resendAfter": tenant.email_resend_seconds}


def _email_code_consume(user: User, code: str) -> bool:
    digest = crypto.keyed_hash(f"{user.pk}:{code}", purpose="email-code")
    now = timezone.now()
    matched = False
    for stored in EmailCode.objects.filter(user=user, expires_at__gt=now).values_list("code_hash", flat=True):
        matched |= hmac.compare_digest(stored.encode(), digest.encode())
    if matched:
        EmailCode.objects.filter(user=user).delete()  # the first code used ends them all
    return matched


def _recovery_code_consume(user: User, code: str) -> bool:
    found = None
    for pk, stored in RecoveryCode.objects.filter(user=user, used_at__isnull=True).values_list("pk", "code_hash"):
        if crypto.salted_hash_matches(code, stored) and found is None:
            found = pk
    if found is None:
        return False
    return RecoveryCode.objects.filter(pk=found, used_at__isnull=True).update(used_at=timezone.now()) == 1


# --- the one place a code is judged --------------------------------------------------------

def code_verify(
    *,
    user: User,
    code: str,
    enroll: str = "",
    ctx: RequestContext | None = None,
    unix_time: float | None = None,
    on_success: Callable[[Verified], tuple[list, Any]] | None = None,
    read: tuple[User, TOTPDevice | None] | None = None,
) -> Verified:
    """Judge one code for ``user`` and count it: the one home of this rule.

    Holds the user's row lock for the judgement (microseconds, no hashing), so parallel
    requests are judged one at a time and never more than the tenant's limit. Accepts,
    by the pending step: an app code (replay-proof), an emailed code, or a recovery code.
    ``on_success(result)`` (the API's token hand-off) answers the sign-in's writes and a
    hand-off value (``accounts.services.sign_in_tokens_prepare``); the writes are made with
    the accepted code, in the same commit, and the value is ``result.handoff``. A refused
    code is counted and committed before the error is raised. Raises ``LockedOut`` or
    ``InvalidCode``.

    The common case, a right app code for a clean account, takes a shorter road to the same
    outcome (``_totp_fast``): no row lock, one read and one write. Anything else, or
    anything that changed under it, is judged here under the lock. ``read``: the user's row
    and app row as this request has just read them (no lock), which saves that read.
    """
    tenant = user.tenant
    method = enroll or user.mfa_method
    unix_time = time.time() if unix_time is None else unix_time
    if method == MfaMethod.TOTP and not enroll:
        result = _totp_fast(user, code, unix_time=unix_time, on_success=on_success, read=read)
        if result is not None:
            return result
    with transaction.atomic():
        state, device = _lock_state(user, with_device=method == MfaMethod.TOTP)
        if lockout.seconds_left(state.locked_until):
            raise LockedOut(lockout.seconds_left(state.locked_until))
        result = _judge(user, method, code, enroll=enroll, unix_time=unix_time, ctx=ctx, device=device)
        if result is not None:
            # The row is locked, so its state is current: a clean row needs no UPDATE (one write per verify).
            if state.failed_code_count or state.failed_password_count or state.locked_until:
                lockout.reset(model=User, pk=user.pk)
            if on_success is not None:
                writes, handoff = on_success(result)
                sql.write_together(*writes)
                result = replace(result, handoff=handoff)
        else:
            attempt = lockout.register_failure(
                model=User, pk=user.pk, counter="code", limit=tenant.mfa_max_attempts, lockout_seconds=tenant.lockout_seconds
            )
            audit_record(kind=Kind.CODE_FAILURE, tenant_id=tenant.id, user=user, ctx=ctx)
            if attempt.locked_until is not None:
                audit_record(kind=Kind.LOCKOUT, tenant_id=tenant.id, user=user, ctx=ctx)
    if result is None:
        if attempt.locked_until is not None:
            notify_user(user=user, kind="locked", seconds=tenant.lockout_seconds)
            raise LockedOut(lockout.seconds_left(attempt.locked_until))
        raise InvalidCode(attempt.remaining)
    if enroll or result.recovery_codes is not None:
        notify_user(user=user, kind="factor_setup", method=MfaMethod(method).label)
    return result


def _totp_fast(user: User, raw: str, *, unix_time: float, on_success, read=None) -> Verified | None:
    """A right code from a confirmed app, for an account with no failure counted and no
    lock: accepted with one read and ONE write and no row lock; else None, and
    ``code_verify`` judges it under the lock (and counts it, if it is refused).

    The read (the user's lockout state and the app, one statement) takes no lock. The write
    is ``config.sql.write_if``: the replay guard (the conditional UPDATE of the app's last
    step, which here also requires that no lock was set meanwhile) and, only if it matched,
    the sign-in's writes; one statement on PostgreSQL. A step already used, a lock set by a
    parallel request, or anything else that changed since the read makes the guard miss,
    and then nothing is written. A clean account needs no counter reset; a parallel failure
    counted after the read stays counted, as if it came after this success."""
    code = totp.normalize_code(raw)
    if code is None:
        return None
    state, device = read or _lock_state(user, with_device=True, lock=False)
    if device is None or device.confirmed_at is None:
        return None
    if state.failed_code_count or state.failed_password_count or state.locked_until:
        return None
    try:
        secret = crypto.decrypt(device.secret_encrypted)
    except crypto.InvalidToken:
        return None
    step = totp.match_step(secret, code, unix_time=unix_time)
    if step is None:
        return None
    result = Verified(amr=AMR_OTP)
    writes, handoff = on_success(result) if on_success is not None else ([], None)
    if not sql.write_if(_totp_step_claim_statement(device, step, unlocked=True), *writes):
        return None
    return replace(result, handoff=handoff)


@cache
def _lock_state_sql(with_device: bool, lock: str) -> str:
    users, devices = User._meta.db_table, TOTPDevice._meta.db_table
    if not with_device:
        return f'SELECT {sql.columns(User, "u")} FROM "{users}" u WHERE u."id" = %s {lock}'
    return (
        f'SELECT {sql.columns(User, "u")}, {sql.columns(TOTPDevice, "d")} FROM "{users}" u '
        f'LEFT JOIN "{devices}" d ON d."user_id" = u."id" WHERE u."id" = %s {lock}'
    )


def _lock_state(user: User, *, with_device: bool, lock: bool = True) -> tuple[User, TOTPDevice | None]:
    """Lock the user's row and read it as it is now (lockout state included); for an app
    code, the app's row comes with it in the same statement (one round trip, no ORM).
    ``lock=False``: the same read without the lock (``_totp_fast``).

    Only the user's row is locked. A joined row read after waiting for that lock may be
    older than the lock's holder left it; for a confirmed app that is harmless (its secret
    never changes, a replaced app has a new id, and the replay guard is the conditional
    UPDATE on the current row), so only an unconfirmed or missing app is read again."""
    conn = connections[router.db_for_write(User)]
    lock = conn.ops.for_update_sql(of=("u",)) if lock and conn.features.has_select_for_update else ""
    with sql.prepared_cursor(conn) as cursor:
        cursor.execute(_lock_state_sql(with_device, lock), [sql.prep(User, "pk", user.pk, conn)])
        row = cursor.fetchone()
    if not with_device:
        return sql.load(User, row, conn), None
    state, device = sql.load_joined(row, User, TOTPDevice, conn=conn)
    if device is None or device.confirmed_at is None:
        return state, TOTPDevice.objects.filter(user=user).first()
    return state, device


def _judge(user: User, method: str, raw: str, *, enroll: str, unix_time: float, ctx, device: TOTPDevice | None) -> Verified | None:
    code = totp.normalize_code(raw)
    if method == MfaMethod.TOTP:
        if device is None:
            return None
        if code is not None:
            return _totp_accept(user, device, code, unix_time=unix_time, ctx=ctx)
        if device.confirmed_at is not None and not enroll:
            return _recovery_accept(user, raw, ctx=ctx)
        return None
    if method == MfaMethod.EMAIL:
        if code is not None and _email_code_consume(user, code):
            if enroll:
                User.objects.filter(pk=user.pk).update(mfa_method=MfaMethod.EMAIL)
                user.mfa_method = MfaMethod.EMAIL
                audit_record(kind=Kind.FACTOR_SETUP, tenant_id=user.tenant_id, user=user, ctx=ctx)
            return Verified(amr=AMR_OTP)
        return _recovery_accept(user, raw, ctx=ctx) if not enroll else None
    return None


def _totp_accept(user: User, device: TOTPDevice, code: str, *, unix_time: float, ctx) -> Verified | None:
    try:
        secret = crypto.decrypt(device.secret_encrypted)
    except crypto.InvalidToken:
        logger.error("TOTP secret of user %s cannot be decrypted with the configured keys", user.pk)
        return None
    step = totp.match_step(secret, code, unix_time=unix_time)
    if step is None:
        return None
    # Replay guard: the check and the write are one statement.
    accepted = _totp_step_claim(device, step)
    if not accepted:
        audit_record(kind=Kind.REPLAY_REFUSED, tenant_id=user.tenant_id, user=user, ctx=ctx)
        return None
    if device.confirmed_at is not None:
        return Verified(amr=AMR_OTP)
    # This code finished the app's set-up.
    if user.mfa_method != MfaMethod.TOTP:
        User.objects.filter(pk=user.pk).update(mfa_method=MfaMethod.TOTP)
        user.mfa_method = MfaMethod.TOTP
    codes = recovery_codes_replace(user=user)
    audit_record(kind=Kind.FACTOR_SETUP, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return Verified(amr=AMR_OTP, recovery_codes=codes)


def _totp_step_claim(device: TOTPDevice, step: int) -> bool:
    """Record ``step`` as used if it is later than the last one used (and confirm the app):
    the check and the write are one conditional UPDATE, so one step passes at most once."""
    conn = connections[router.db_for_write(TOTPDevice)]
    with sql.prepared_cursor(conn) as cursor:
        cursor.execute(*_totp_step_claim_statement(device, step))
        return cursor.rowcount == 1


def _totp_step_claim_statement(device: TOTPDevice, step: int, *, unlocked: bool = False) -> tuple[str, list]:
    """``_totp_step_claim``'s UPDATE. ``unlocked``: it also requires a confirmed app and a
    user not locked as the statement runs (``_totp_fast`` holds no row lock)."""
    conn = connections[router.db_for_write(TOTPDevice)]
    confirmed_at = sql.prep(TOTPDevice, "confirmed_at", device.confirmed_at or timezone.now(), conn)
    table = TOTPDevice._meta.db_table
    statement = f'UPDATE "{table}" SET "last_step" = %s, "confirmed_at" = %s WHERE "id" = %s AND "last_step" < %s'
    params = [step, confirmed_at, device.pk, step]
    if unlocked:
        statement += (
            f' AND "confirmed_at" IS NOT NULL AND EXISTS (SELECT 1 FROM "{User._meta.db_table}" u'
            f' WHERE u."id" = "{table}"."user_id" AND (u."locked_until" IS NULL OR u."locked_until" <= %s))'
        )
        params.append(sql.prep(User, "locked_until", timezone.now(), conn))
    return statement, params


def _recovery_accept(user: User, raw: str, *, ctx) -> Verified | None:
    code = recovery.normalize(raw)
    if code is None or not _recovery_code_consume(user, code):
        return None
    audit_record(kind=Kind.RECOVERY_CODE_USED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return Verified(amr=AMR_RECOVERY, used_recovery_code=True)


# --- the API's enrollment choice -----------------------------------------------------------
# A user without a method, in a tenant that requires one, gets an mfaToken that carries
# ``enroll="totp"`` (the API's default choice). The token is signed and cannot change, so
# the choice made afterwards lives in the database: calling ``auth/mfa/email/send`` chooses
# email (an unexpired emailed code exists), calling ``auth/mfa/totp/setup`` chooses the app
# again (the emailed codes go). The last call wins.

def _enrolling(user: User, enroll: str) -> bool:
    return bool(enroll) and user.mfa_method == MfaMethod.NONE


def enrollment_method(*, user: User, enroll: str) -> str:
    """The ``enroll`` to judge a code of this API sign-in with (see the note above)."""
    if _enrolling(user, enroll) and EmailCode.objects.filter(user=user, expires_at__gt=timezone.now()).exists():
        return MfaMethod.EMAIL
    return enroll


def enrollment_totp_begin(*, user: User, enroll: str) -> str:
    """``totp_device_begin`` for an API sign-in; an enrolling user's email choice is dropped."""
    with transaction.atomic():
        if _enrolling(user, enroll):
            EmailCode.objects.filter(user=user).delete()
        return totp_device_begin(user=user)


def enrollment_email_send(*, user: User, enroll: str, ctx: RequestContext | None = None) -> dict:
    """``email_code_send`` for an API sign-in; for an enrolling user this chooses email (a
    half-done app set-up is dropped). All or nothing: on ``ResendTooSoon`` or
    ``EmailUnavailable`` nothing changes."""
    with transaction.atomic():
        if _enrolling(user, enroll):
            TOTPDevice.objects.filter(user=user, confirmed_at__isnull=True).delete()
        return email_code_send(user=user, ctx=ctx)

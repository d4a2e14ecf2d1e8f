"""Second factors: set-up, sending email codes, and the one home of "verify a code and count
the failure" (django-otp's ``verify_token``: atomic, row lock, check allowed → verify →
reset or count), used by the pages and the API alike."""
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts import lockout
from accounts.audit import RequestContext, audit_record
from accounts.errors import AuthFailure, CodeAlreadyUsed, EmailUnavailable, InvalidCode, InvalidMfaToken, LockedOut, ResendTooSoon
from accounts.models import AuditEvent, MfaMethod, User
from accounts.notifications import notify_user, render_mail
from accounts.tokens import AMR_OTP, AMR_RECOVERY
from mfa import crypto, recovery, totp
from mfa.models import EmailCode, RecoveryCode, TOTPDevice

logger = logging.getLogger(__name__)
Kind = AuditEvent.Kind

# At most this many emailed codes are live per user: a new send retires the oldest.
EMAIL_CODES_LIVE = 3


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
    return TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


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
    """The secret being set up: a new one, or the one already being set up, so parallel calls
    all answer the same secret (the app row is unique per user: of two parallel creations one
    wins and the other reads it). Plain, for display only. Raises ``ValueError`` when the app
    is already set up."""
    with transaction.atomic():
        device, _created = TOTPDevice.objects.get_or_create(
            user=user, defaults={"secret_encrypted": crypto.encrypt(totp.generate_secret())}
        )
        if device.confirmed_at is not None:
            raise ValueError("The app is already set up; reset MFA first.")
        try:
            return crypto.decrypt(device.secret_encrypted)
        except crypto.InvalidToken:  # made under keys no longer configured: start again
            secret = totp.generate_secret()
            TOTPDevice.objects.filter(pk=device.pk, confirmed_at__isnull=True).update(
                secret_encrypted=crypto.encrypt(secret), last_step=0
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


# --- recovery codes ------------------------------------------------------------------------

def _recovery_hash(user: User, code: str) -> str:
    """A recovery code at rest: a keyed hash (HMAC under a key from SECRET_KEY), so a database
    dump alone cannot test guesses, and a code is found by equality in one statement."""
    return crypto.keyed_hash(f"{user.pk}:{code}", purpose="recovery-code")


def recovery_codes_replace(*, user: User) -> list[str]:
    """A new set of recovery codes; the old set stops working. Returns the plain codes, once."""
    codes = [recovery.generate_code() for _ in range(settings.MFA_RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(
            [RecoveryCode(user=user, code_hash=_recovery_hash(user, recovery.normalize(c))) for c in codes]
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

def _email_hash(user: User, code: str) -> str:
    return crypto.keyed_hash(f"{user.pk}:{code}", purpose="email-code")


def email_code_send(*, user: User, ctx: RequestContext | None = None) -> dict:
    """Create and mail a code, honouring the tenant's resend gap across processes.

    The gap is checked and the code stored under the user's row lock, which is released
    before the mail goes out: no lock is held while the mail server answers, however slowly.
    The user is waiting for this code, so it is sent here rather than queued; when it cannot
    be sent, the stored code is taken back and ``EmailUnavailable`` raised (nothing counted,
    so the next try is not "too soon"). At most ``EMAIL_CODES_LIVE`` codes are live: a new
    one retires the oldest. Raises ``ResendTooSoon`` or ``EmailUnavailable``.
    Returns ``{"sentTo", "resendAfter"}``.
    """
    tenant = user.tenant
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        now = timezone.now()
        last = EmailCode.objects.filter(user=user).order_by("-created_at").values_list("created_at", flat=True).first()
        if last is not None and tenant.email_resend_seconds:
            wait = tenant.email_resend_seconds - (now - last).total_seconds()
            if wait > 0:
                raise ResendTooSoon(int(wait + 0.999))
        sent = EmailCode.objects.create(
            user=user,
            code_hash=_email_hash(user, code),
            created_at=now,
            expires_at=now + timedelta(seconds=tenant.email_code_ttl_seconds),
        )
        live = EmailCode.objects.filter(user=user).order_by("-created_at", "-pk").values_list("pk", flat=True)
        EmailCode.objects.filter(user=user).exclude(pk__in=list(live[:EMAIL_CODES_LIVE])).delete()
    subject, body = render_mail(
        "mfa/email/code",
        {"user": user, "tenant": tenant, "code": code, "sent_at": now, "minutes": max(tenant.email_code_ttl_seconds // 60, 1), "seconds": tenant.email_code_ttl_seconds},
    )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:
        logger.warning("could not email a sign-in code to user %s", user.pk)
        EmailCode.objects.filter(pk=sent.pk).delete()
        raise EmailUnavailable() from None
    return {"sentTo": mask_email(user.email), "resendAfter": tenant.email_resend_seconds}


def _email_code_consume(user: User, code: str) -> bool:
    digest = _email_hash(user, code)
    matched = False
    for stored in EmailCode.objects.filter(user=user, expires_at__gt=timezone.now()).values_list("code_hash", flat=True):
        matched |= hmac.compare_digest(stored.encode(), digest.encode())
    if matched:
        EmailCode.objects.filter(user=user).delete()  # the first code used ends them all
    return matched


def _recovery_code_consume(user: User, code: str) -> bool:
    """Use a recovery code once: the look-up and the write are one conditional UPDATE."""
    used = RecoveryCode.objects.filter(user=user, code_hash=_recovery_hash(user, code), used_at__isnull=True)
    return used.update(used_at=timezone.now()) == 1


# --- the one place a code is judged --------------------------------------------------------

def _last_code_hash(user: User, raw: str) -> str:
    """The keyed hash remembered of an accepted code (``User.last_code_hash``), of the code as
    judged (digits without spaces, or a normalized recovery code)."""
    code = totp.normalize_code(raw) or recovery.normalize(raw)
    return crypto.keyed_hash(f"{user.pk}:{code}", purpose="last-code") if code else ""


def code_verify(
    *,
    user: User,
    code: str,
    enroll: str = "",
    fingerprint: str | None = None,
    ctx: RequestContext | None = None,
    unix_time: float | None = None,
    on_success: Callable[["Verified"], Any] | None = None,
) -> Verified:
    """Judge one code for ``user`` and count it: the one home of this rule, one road for every
    factor, page and API.

    In one transaction, holding the user's row lock (parallel requests are judged one at a
    time, never past the tenant's limit): the pending sign-in still valid? (``fingerprint``,
    the pending sign-in's ``User.sign_in_fingerprint``: a completed sign-in, a password
    change or an MFA reset ends it) → locked? → judge (an app code, replay-proof; an emailed
    code; or a recovery code) → reset the counters and call ``on_success(result)`` (the
    caller's sign-in record or token hand-off: it commits with the accepted code, and its
    answer is ``result.handoff``), or count the failure with its audit event. The code last
    accepted, sent again, is ``CodeAlreadyUsed`` and is not counted. Notices are queued in
    the same transaction. Raises ``InvalidMfaToken``, ``LockedOut``, ``CodeAlreadyUsed`` or
    ``InvalidCode``.
    """
    tenant = user.tenant
    method = enroll or user.mfa_method
    unix_time = time.time() if unix_time is None else unix_time
    refused: AuthFailure | None = None
    with transaction.atomic():
        state = User.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
        if state is None or (fingerprint is not None and not constant_time_compare(state.sign_in_fingerprint(), fingerprint)):
            raise InvalidMfaToken()
        state.tenant = tenant
        wait = lockout.seconds_left(state.locked_until)
        if wait:
            raise LockedOut(wait)
        result = _judge(state, method, code, enroll=enroll, unix_time=unix_time, ctx=ctx)
        if result is not None:
            lockout.reset(model=User, pk=user.pk)
            User.objects.filter(pk=user.pk).update(last_code_hash=_last_code_hash(user, code))
            user.mfa_method = state.mfa_method
            if on_success is not None:
                result = replace(result, handoff=on_success(result))
            if enroll or result.recovery_codes is not None:
                notify_user(user=state, kind="factor_setup", method=MfaMethod(method).label)
        elif state.last_code_hash and constant_time_compare(_last_code_hash(user, code), state.last_code_hash):
            refused = CodeAlreadyUsed()
        else:
            refused = _code_failure(state, ctx=ctx)
    if refused is not None:
        raise refused
    return result


def _code_failure(user: User, *, ctx) -> AuthFailure:
    """Count a wrong code and audit it; at the limit, audit the lock and queue the notice."""
    tenant = user.tenant
    attempt = lockout.register_failure(
        model=User, pk=user.pk, counter="code", limit=tenant.mfa_max_attempts, lockout_seconds=tenant.lockout_seconds
    )
    audit_record(kind=Kind.CODE_FAILURE, tenant_id=tenant.id, user=user, ctx=ctx)
    if attempt.locked_until is None:
        return InvalidCode(attempt.remaining)
    audit_record(kind=Kind.LOCKOUT, tenant_id=tenant.id, user=user, ctx=ctx)
    notify_user(user=user, kind="locked", seconds=tenant.lockout_seconds)
    return LockedOut(lockout.seconds_left(attempt.locked_until))


def _judge(user: User, method: str, raw: str, *, enroll: str, unix_time: float, ctx) -> Verified | None:
    code = totp.normalize_code(raw)
    if method == MfaMethod.TOTP:
        device = TOTPDevice.objects.filter(user=user).first()
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
    # Replay guard (django-otp's last_t): the check and the write are one conditional UPDATE,
    # so a time step passes at most once, on any host.
    claimed = TOTPDevice.objects.filter(pk=device.pk, last_step__lt=step).update(
        last_step=step, confirmed_at=device.confirmed_at or timezone.now()
    )
    if not claimed:
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
    """``email_code_send`` for an API sign-in; for an enrolling user this chooses email: once
    the code is sent, a half-done app set-up is dropped. On ``ResendTooSoon`` or
    ``EmailUnavailable`` nothing changes."""
    body = email_code_send(user=user, ctx=ctx)
    if _enrolling(user, enroll):
        TOTPDevice.objects.filter(user=user, confirmed_at__isnull=True).delete()
    return body

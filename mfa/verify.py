"""The one home of "verify a code and count the failure" (django-otp's ``verify_token``:
atomic, row lock, check allowed → verify → reset or count), one road for every factor, used
by the pages and the API alike."""
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts import lockout, metrics
from accounts.audit import RequestContext, audit_record
from accounts.errors import AuthFailure, CodeAlreadyUsed, InvalidCode, InvalidMfaToken, LockedOut
from accounts.models import AuditEvent, MfaMethod, User
from accounts.notifications import notify_user
from accounts.services import email_verified_mark
from accounts.tokens import AMR_OTP, AMR_PASSKEY, AMR_RECOVERY
from mfa import crypto, recovery, totp
from mfa.email_codes import email_code_use
from mfa.models import TOTPDevice, WebAuthnCredential
from mfa.passkeys import passkey_assert, passkey_register
from mfa.webauthn import CredentialRefused, RelyingParty
from mfa.recovery_codes import recovery_code_use, recovery_codes_replace

logger = logging.getLogger(__name__)
Kind = AuditEvent.Kind


@dataclass(frozen=True)
class Verified:
    amr: list[str]
    recovery_codes: list[str] | None = None  # set when this finished an app set-up
    used_recovery_code: bool = False
    handoff: Any = None  # what ``code_verify``'s ``on_success`` returned (the API: the token body)


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
    credential: Any = None,
    rp: RelyingParty | None = None,
    passkey_name: str = "",
) -> Verified:
    """Judge one code for ``user`` and count it: the one home of this rule, one road for every
    factor, page and API.

    In one transaction, holding the user's row lock (parallel requests are judged one at a
    time, never past the tenant's limit): the pending sign-in still valid? (``fingerprint``,
    the pending sign-in's ``User.sign_in_fingerprint``: a completed sign-in, a password
    change or an MFA reset ends it) → locked? → judge (an app code, replay-proof; an emailed
    code; or a recovery code) → reset the counters and call ``on_success(result)`` (the
    caller's sign-in record or token hand-off: it commits with the accepted code, and its
    answer is ``result.handoff``), or count the failure with its audit event. For passkeys,
    ``credential`` (a browser's WebAuthn answer, with ``rp`` the relying party of the request)
    takes the place of ``code``: a registration while the passkey is being set up, else an
    assertion; its challenge must be bound to ``fingerprint``. The code last
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
            metrics.sign_in_step(method=method or "none", result="locked")
            raise LockedOut(wait)
        if credential is not None:
            result = _passkey_judge(state, credential, enroll=enroll, binding=fingerprint or "", rp=rp, name=passkey_name, ctx=ctx)
        else:
            result = _judge(state, method, code, enroll=enroll, unix_time=unix_time, ctx=ctx)
        if result is not None:
            # The row is locked, so ``state`` is current: a clean account needs no reset.
            if state.failed_code_count or state.failed_password_count or state.locked_until:
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
        if isinstance(refused, CodeAlreadyUsed):
            metrics.sign_in_step(method=method or "none", result="already_used")
        else:
            metrics.sign_in_step(method=method or "none", result="failure")
            if isinstance(refused, LockedOut):
                metrics.lockout(counter="code")
        raise refused
    metrics.sign_in_step(method="recovery_code" if result.used_recovery_code else method, result="success")
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
        if device.confirmed_at is not None:
            return _recovery_accept(user, raw, ctx=ctx)
        return None
    if method == MfaMethod.WEBAUTHN:
        # A passkey answers with a credential (``_passkey_judge``); a code here can only be a
        # recovery code, once a passkey is set up.
        if not passkey_registering(user):
            return _recovery_accept(user, raw, ctx=ctx)
        return None
    if method == MfaMethod.EMAIL:
        if code is not None and email_code_use(user=user, code=code):
            email_verified_mark(user=user)
            if enroll:
                _method_use(user, MfaMethod.EMAIL)
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
        _method_use(user, MfaMethod.TOTP)  # chosen again, already set up
        return Verified(amr=AMR_OTP)
    return _setup_finished(user, MfaMethod.TOTP, amr=AMR_OTP, ctx=ctx)  # this code finished the app's set-up


def _method_use(user: User, method: str) -> None:
    """Make ``method`` the user's second factor (one UPDATE, only when it changes)."""
    if user.mfa_method != method:
        User.objects.filter(pk=user.pk).update(mfa_method=method)
        user.mfa_method = method


def _setup_finished(user: User, method: str, *, amr: list[str], ctx) -> Verified:
    """A factor with recovery codes (app, passkey) was just set up: it becomes the method, the
    recovery codes are made (shown once), and the set-up is audited."""
    _method_use(user, method)
    codes = recovery_codes_replace(user=user, ctx=ctx)
    audit_record(kind=Kind.FACTOR_SETUP, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return Verified(amr=amr, recovery_codes=codes)


def passkey_registering(user: User) -> bool:
    """Whether a passkey answer of a sign-in is a registration: the user has no passkey yet."""
    return not WebAuthnCredential.objects.filter(user=user).exists()


def _passkey_judge(user: User, credential: Any, *, enroll: str, binding: str, rp: RelyingParty | None, name: str, ctx) -> Verified | None:
    method = enroll or user.mfa_method
    if method != MfaMethod.WEBAUTHN or rp is None or not binding:
        return None
    if not passkey_registering(user):
        if not passkey_assert(user=user, credential=credential, binding=binding, rp=rp, ctx=ctx):
            return None
        _method_use(user, MfaMethod.WEBAUTHN)  # chosen again, already set up
        return Verified(amr=AMR_PASSKEY)
    try:
        passkey_register(user=user, credential=credential, name=name, binding=binding, rp=rp, ctx=ctx)
    except CredentialRefused:
        return None
    return _setup_finished(user, MfaMethod.WEBAUTHN, amr=AMR_PASSKEY, ctx=ctx)  # this passkey finished the set-up


def _recovery_accept(user: User, raw: str, *, ctx) -> Verified | None:
    if not recovery_code_use(user=user, raw=raw):
        return None
    audit_record(kind=Kind.RECOVERY_CODE_USED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return Verified(amr=AMR_RECOVERY, used_recovery_code=True)

"""A user's second factor: which step a sign-in needs, setting the app up, the API's choice
of method while enrolling, and the reset of every factor (a lost phone)."""
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.audit import RequestContext, audit_record
from accounts.models import AuditEvent, MfaMethod, User
from accounts.notifications import notify_user
from accounts.services import user_sessions_end
from mfa import crypto, totp
from mfa.email_codes import email_code_pending, email_code_send
from mfa.models import EmailCode, RecoveryCode, RememberedBrowser, TOTPDevice, WebAuthnChallenge, WebAuthnCredential


def totp_confirmed(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def passkey_count(user: User) -> int:
    """How many passkeys the user has (read from ``with_totp_confirmed`` when the list has it)."""
    counted = getattr(user, "passkey_count", None)
    return WebAuthnCredential.objects.filter(user=user).count() if counted is None else counted


def with_totp_confirmed(users: QuerySet[User]) -> QuerySet[User]:
    """``users`` annotated with ``totp_confirmed`` and ``passkey_count``, for lists
    (``mfa_enrolled`` and ``passkey_count`` read them)."""
    passkeys = WebAuthnCredential.objects.filter(user=OuterRef("pk")).order_by().values("user").annotate(n=Count("pk")).values("n")
    return users.annotate(
        totp_confirmed=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed_at__isnull=False)),
        passkey_count=Coalesce(Subquery(passkeys), 0),
    )


def mfa_enrolled_q() -> Q:
    """``mfa_enrolled`` as a filter, on a ``with_totp_confirmed`` queryset."""
    return (
        Q(mfa_method=MfaMethod.EMAIL)
        | Q(mfa_method=MfaMethod.TOTP, totp_confirmed=True)
        | Q(mfa_method=MfaMethod.WEBAUTHN, passkey_count__gt=0)
    )


def mfa_enrolled(user: User) -> bool:
    """Whether the user's method is ready to use: emailed codes always are; the app once a
    first code confirmed it (read from ``with_totp_confirmed`` when the list has it); passkeys
    once one is registered."""
    if user.mfa_method == MfaMethod.EMAIL:
        return True
    if user.mfa_method == MfaMethod.TOTP:
        confirmed = getattr(user, "totp_confirmed", None)
        return bool(totp_confirmed(user) if confirmed is None else confirmed)
    if user.mfa_method == MfaMethod.WEBAUTHN:
        return passkey_count(user) > 0
    return False


def method_needs_choice(user: User) -> bool:
    """The user has a method their tenant no longer allows: they choose again at sign-in."""
    return user.mfa_method != MfaMethod.NONE and not user.tenant.allows(user.mfa_method)


def enrollment_needed(user: User, *, enroll: str = "") -> str:
    """What the pending sign-in must do next: ``setup`` (app or passkey), ``choose``,
    ``verify`` or ``""`` (done). A method the tenant does not allow (any more) is chosen again."""
    if enroll and not user.tenant.allows(enroll):
        return "choose"
    if not enroll and method_needs_choice(user):
        return "choose"
    method = enroll or user.mfa_method
    # A method chosen again that is already set up (an app confirmed, a passkey registered)
    # is used, not set up a second time.
    if method == MfaMethod.TOTP:
        return "verify" if totp_confirmed(user) else "setup"
    if method == MfaMethod.EMAIL:
        return "verify"
    if method == MfaMethod.WEBAUTHN:
        return "verify" if passkey_count(user) > 0 else "setup"
    return "choose" if user.tenant.mfa_required else ""


def first_allowed_method(tenant) -> str:
    """The method the API offers a user who must choose (the app when allowed, as before)."""
    return next(m for m in (MfaMethod.TOTP, MfaMethod.EMAIL, MfaMethod.WEBAUTHN) if tenant.allows(m))


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


def mfa_reset(*, user: User, actor: User | None = None, ctx: RequestContext | None = None) -> User:
    """Lost phone: clear every factor's state (app secret, passkeys, recovery codes, pending
    emailed codes, remembered browsers); end the user's sessions, unfinished sign-ins and refresh tokens; audit; tell the
    user (queued in the same transaction: no mail is sent while the row is held). The method
    stays, so an app user sets the app up again."""
    with transaction.atomic():
        user_sessions_end(user=user)
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        EmailCode.objects.filter(user=user).delete()
        WebAuthnCredential.objects.filter(user=user).delete()
        WebAuthnChallenge.objects.filter(user=user).delete()
        RememberedBrowser.objects.filter(user=user).delete()
        audit_record(kind=AuditEvent.Kind.MFA_RESET, tenant_id=user.tenant_id, user=user, actor=actor, ctx=ctx)
        notify_user(user=user, kind="mfa_reset")
    return user


# --- the API's enrollment choice -----------------------------------------------------------
# A user without a method, in a tenant that requires one, gets an mfaToken that carries
# ``enroll="totp"`` (the API's default choice). The token is signed and cannot change, so
# the choice made afterwards lives in the database: calling ``auth/mfa/email/send`` chooses
# email (an unexpired emailed code exists), calling ``auth/mfa/totp/setup`` chooses the app
# again (the emailed codes go). The last call wins.

def enrolling(user: User, enroll: str) -> bool:
    """Whether this API sign-in is choosing a method (none yet, or one no longer allowed)."""
    return bool(enroll) and (user.mfa_method == MfaMethod.NONE or method_needs_choice(user))


def enrollment_method(*, user: User, enroll: str, passkey: bool = False) -> str:
    """The ``enroll`` to judge a code (or, with ``passkey``, a passkey answer) of this API
    sign-in with (see the note above)."""
    if enrolling(user, enroll):
        if passkey and user.tenant.allows(MfaMethod.WEBAUTHN):
            return MfaMethod.WEBAUTHN
        if not passkey and email_code_pending(user=user) and user.tenant.allows(MfaMethod.EMAIL):
            return MfaMethod.EMAIL
    return enroll


def enrollment_totp_begin(*, user: User, enroll: str) -> str:
    """``totp_device_begin`` for an API sign-in; an enrolling user's email choice is dropped."""
    with transaction.atomic():
        if enrolling(user, enroll):
            EmailCode.objects.filter(user=user).delete()
        return totp_device_begin(user=user)


def enrollment_email_send(*, user: User, enroll: str) -> dict:
    """``email_code_send`` for an API sign-in; for an enrolling user this chooses email: once
    the code is sent, a half-done app set-up is dropped. On ``ResendTooSoon`` or
    ``EmailUnavailable`` nothing changes."""
    body = email_code_send(user=user)
    if enrolling(user, enroll):
        TOTPDevice.objects.filter(user=user, confirmed_at__isnull=True).delete()
    return body

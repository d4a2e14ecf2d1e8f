"""Passkeys (WebAuthn credentials): the writes. Challenges are issued here and spent once;
registration and assertion are judged with ``mfa.webauthn`` (pure) and stored here. The
sign-in's road (``mfa.verify.code_verify``) calls ``passkey_register`` and ``passkey_assert``
under the user's row lock, so a refused passkey counts like a wrong code."""
import datetime
import uuid

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import RequestContext, audit_record
from accounts.models import AuditEvent, MfaMethod, User
from accounts.notifications import notify_user
from mfa import webauthn
from mfa.models import WebAuthnChallenge, WebAuthnCredential
from mfa.webauthn import CredentialRefused, RelyingParty

CHALLENGE_SECONDS = 300  # WebAuthn's recommended ceremony timeout; the contract's ceiling
LIVE_CHALLENGES_PER_USER = 5
Kind = AuditEvent.Kind
Purpose = WebAuthnChallenge.Purpose


class PasskeyRefused(Exception):
    """A passkey change the account's state does not allow (``code`` says which)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


def passkey_list(*, user: User) -> QuerySet[WebAuthnCredential]:
    return WebAuthnCredential.objects.filter(user=user).order_by("created_at", "id")


def _user_handle(user: User) -> bytes:
    # The WebAuthn user handle: the user's random id (no personal data, WebAuthn §14.6.1).
    return uuid.UUID(str(user.pk)).bytes


# --- challenges ------------------------------------------------------------------------------

def webauthn_challenge_issue(*, user: User, purpose: str, binding: str, rp: RelyingParty) -> str:
    """A fresh challenge for ``user``, bound to ``binding`` (the pending sign-in's fingerprint,
    or a keyed hash of a signed-in session) and to the relying party; expired ones are
    swept and at most a few stay live per user."""
    now = timezone.now()
    challenge = webauthn.new_challenge()
    with transaction.atomic():
        WebAuthnChallenge.objects.filter(user=user, expires_at__lte=now).delete()
        stale = WebAuthnChallenge.objects.filter(user=user).order_by("-expires_at").values_list("pk", flat=True)[
            LIVE_CHALLENGES_PER_USER - 1:
        ]
        WebAuthnChallenge.objects.filter(pk__in=list(stale)).delete()
        WebAuthnChallenge.objects.create(
            user=user, challenge=challenge, purpose=purpose, binding=binding, rp_id=rp.id,
            expires_at=now + datetime.timedelta(seconds=CHALLENGE_SECONDS),
        )
    return challenge


def webauthn_challenge_spend(*, user: User, credential, purpose: str, binding: str, rp: RelyingParty) -> str:
    """Spend the challenge the answer names: once, unexpired, of this user, purpose, binding
    and relying party (one DELETE decides, so of two uses of one challenge one wins).
    Raises ``CredentialRefused`` otherwise."""
    challenge = webauthn.response_challenge(credential)
    if not challenge:
        raise CredentialRefused("malformed")
    spent, _by_model = WebAuthnChallenge.objects.filter(
        user=user, challenge=challenge, purpose=purpose, binding=binding, rp_id=rp.id, expires_at__gt=timezone.now()
    ).delete()
    if not spent:
        raise CredentialRefused("unknown, used or expired challenge")
    return challenge


def webauthn_options(*, user: User, binding: str, rp: RelyingParty, register: bool) -> dict:
    """``{"publicKey": ...}``: creation options (``register``) or request options."""
    existing = list(passkey_list(user=user).values_list("credential_id", flat=True))
    if register:
        challenge = webauthn_challenge_issue(user=user, purpose=Purpose.REGISTER, binding=binding, rp=rp)
        return webauthn.creation_options(
            rp, challenge=challenge, user_handle=_user_handle(user), username=user.username, display_name=user.username, exclude=existing
        )
    challenge = webauthn_challenge_issue(user=user, purpose=Purpose.AUTHENTICATE, binding=binding, rp=rp)
    return webauthn.request_options(rp, challenge=challenge, allow=existing)


# --- registration, use, removal ----------------------------------------------------------------

def passkey_register(
    *, user: User, credential, name: str, binding: str, rp: RelyingParty, ctx: RequestContext | None = None
) -> WebAuthnCredential:
    """Judge a ``navigator.credentials.create`` answer and store the passkey; audited. Raises
    ``CredentialRefused`` (a malformed or wrong answer, a spent or expired challenge, a
    credential already registered)."""
    # Spent before it is judged and outside the savepoint below: a refused answer cannot be retried.
    challenge = webauthn_challenge_spend(user=user, credential=credential, purpose=Purpose.REGISTER, binding=binding, rp=rp)
    new = webauthn.registration_verify(rp, challenge=challenge, credential=credential)
    if WebAuthnCredential.objects.filter(credential_id=new.credential_id).exists():
        raise CredentialRefused("credential already registered")
    try:
        with transaction.atomic():
            passkey = WebAuthnCredential.objects.create(
                user=user, name=(name.strip() or webauthn.default_name(ctx.user_agent if ctx else ""))[:100],
                credential_id=new.credential_id, public_key=new.public_key, sign_count=new.sign_count,
            )
    except IntegrityError:  # the same credential registered by a parallel request
        raise CredentialRefused("credential already registered") from None
    audit_record(kind=Kind.PASSKEY_ADDED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return passkey


def passkey_assert(*, user: User, credential, binding: str, rp: RelyingParty, ctx: RequestContext | None = None) -> WebAuthnCredential | None:
    """Judge a ``navigator.credentials.get`` answer of ``user`` (called by ``code_verify``
    under the user's row lock). The challenge is spent first, so a refused answer cannot be
    retried with it. The sign count is checked and moved in one conditional UPDATE: a count
    that does not move forward (a cloned authenticator) is refused and audited. None when
    refused."""
    try:
        challenge = webauthn_challenge_spend(user=user, credential=credential, purpose=Purpose.AUTHENTICATE, binding=binding, rp=rp)
        credential_id = webauthn.response_credential_id(credential)
        # Only this user's passkeys: another user's (or tenant's) credential is unknown here.
        passkey = WebAuthnCredential.objects.filter(user=user, credential_id=credential_id).first() if credential_id else None
        if passkey is None:
            return None
        assertion = webauthn.assertion_verify(rp, challenge=challenge, credential=credential, public_key=bytes(passkey.public_key))
    except CredentialRefused:
        return None
    now = timezone.now()
    if assertion.sign_count == 0:
        moved = WebAuthnCredential.objects.filter(pk=passkey.pk, sign_count=0).update(last_used_at=now)
    else:
        moved = WebAuthnCredential.objects.filter(pk=passkey.pk, sign_count__lt=assertion.sign_count).update(
            sign_count=assertion.sign_count, last_used_at=now
        )
    if not moved:
        audit_record(kind=Kind.PASSKEY_CLONE_SUSPECTED, tenant_id=user.tenant_id, user=user, ctx=ctx)
        return None
    audit_record(kind=Kind.PASSKEY_USED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return passkey


def passkey_add(
    *, user: User, credential, name: str, binding: str, rp: RelyingParty, ctx: RequestContext | None = None
) -> WebAuthnCredential:
    """A signed-in user adds another passkey (the account page): ``passkey_register``, and the
    user is told a factor was set up (queued with it). Raises ``CredentialRefused``."""
    # Not one savepoint: a refused answer must still spend its challenge.
    passkey = passkey_register(user=user, credential=credential, name=name, binding=binding, rp=rp, ctx=ctx)
    notify_user(user=user, kind="factor_setup", method=MfaMethod.WEBAUTHN.label)
    return passkey


def passkey_remove(*, user: User, passkey_id: int, ctx: RequestContext | None = None) -> None:
    """Remove one of the user's passkeys; never the last while the user's method is passkeys.
    Raises ``PasskeyRefused``."""
    with transaction.atomic():
        state = User.objects.select_for_update().get(pk=user.pk)
        passkeys = WebAuthnCredential.objects.filter(user=state)
        if not passkeys.filter(pk=passkey_id).exists():
            raise PasskeyRefused(_("That passkey does not exist."), code="not_found")
        if state.mfa_method == MfaMethod.WEBAUTHN and passkeys.count() <= 1:
            raise PasskeyRefused(_("This is your only passkey: add another before removing it."), code="last_passkey")
        passkeys.filter(pk=passkey_id).delete()
        audit_record(kind=Kind.PASSKEY_REMOVED, tenant_id=user.tenant_id, user=user, ctx=ctx)

"""JWTs, minted by our code after our own checks (simplejwt's stock obtain view is never mounted).

A sign-in begins a refresh-token chain (``RefreshTokenChain``); each refresh uses its token
once and issues the next one in the same chain. Every acceptance of a refresh token, and
every revocation, runs under the user's row lock (``select_for_update``), so a revocation
and a racing refresh are judged one after the other: once ``refresh_tokens_revoke`` has
answered, no refresh token of that user works, including one a racing refresh minted.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch, datetime_to_epoch

from accounts import metrics
from accounts.audit import RequestContext, audit_record
from accounts.errors import InvalidRefreshToken
from accounts.models import AuditEvent, RefreshTokenChain, User
from accounts.selectors import as_uuid

AMR_PASSWORD = ["pwd"]
AMR_OTP = ["pwd", "otp", "mfa"]
AMR_RECOVERY = ["pwd", "mfa"]
AMR_PASSKEY = ["pwd", "hwk", "mfa"]
AMR_REMEMBERED = ["pwd", "swk", "mfa"]  # the password and a remembered browser's key (after an earlier second factor)  # RFC 8176: proof of possession of a key held by an authenticator


def token_pair_issue(*, user: User, amr: list[str]) -> dict:
    """The contract's token body for a user who has just passed every required factor: a
    new chain, starting now. Call it inside the transaction that records the sign-in."""
    now = timezone.now()
    chain = RefreshTokenChain.objects.create(
        user=user, auth_time=now, expires_at=now + timedelta(seconds=settings.REFRESH_TOKEN_MAX_SECONDS)
    )
    return token_body(_refresh_issue(user=user, chain=chain, amr=amr))


def _refresh_issue(*, user: User, chain: RefreshTokenChain, amr: list[str]) -> RefreshToken:
    """The next refresh token of ``chain``, recorded in simplejwt's outstanding-token table
    by its jti only: a database dump must not hold a usable credential."""
    refresh = RefreshToken()
    refresh[jwt_settings.USER_ID_CLAIM] = str(user.pk)
    refresh["tid"] = user.tenant_id
    refresh["amr"] = list(amr)
    refresh["admin"] = bool(user.is_tenant_admin)
    refresh["chain"] = str(chain.pk)
    refresh["auth_time"] = datetime_to_epoch(chain.auth_time)
    if datetime_from_epoch(refresh["exp"]) > chain.expires_at:
        refresh.set_exp(from_time=chain.expires_at, lifetime=timedelta(0))
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[jwt_settings.JTI_CLAIM],
        token="",
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return refresh


def token_body(refresh: RefreshToken) -> dict:
    access = refresh.access_token
    return {
        "accessToken": str(access),
        "refreshToken": str(refresh),
        "tokenType": "Bearer",
        "expiresIn": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    }


def refresh_tokens_revoke(*, user: User, keep_chain=None) -> int:
    """End every refresh-token chain of ``user`` (password change, MFA reset, deletion), but
    ``keep_chain`` (the id of the chain of a user changing their own password through the API).

    Under the user's row lock, like every refresh: a refresh that raced with this either
    finished first (its new token is in a chain ended here) or waits and finds its chain
    ended. Call it inside the transaction of the change it belongs to."""
    with transaction.atomic(savepoint=False):  # inside a caller's transaction, part of it
        User.objects.select_for_update().filter(pk=user.pk).first()
        chains = RefreshTokenChain.objects.filter(user=user, revoked_at__isnull=True)
        keep = as_uuid(keep_chain) if keep_chain is not None else None
        if keep is not None:
            chains = chains.exclude(pk=keep)
        return chains.update(revoked_at=timezone.now())


class _PresentedRefreshToken(RefreshToken):
    """A refresh token as presented: signature (configured algorithm only), expiry and type are
    verified. simplejwt's blacklist look-up is left out on purpose: ``_presented_use`` reads
    whether the token was used and blacklists it, holding the user's row lock, so that a
    second use is seen (and ends the chain) however the uses race."""

    def verify(self, *args, **kwargs) -> None:
        Token.verify(self, *args, **kwargs)


def _presented(raw, *, tenant_id: str) -> RefreshToken:
    """A refresh token of this tenant with a valid signature, expiry and type (no database)."""
    if not isinstance(raw, str) or not raw or len(raw) > 4096:
        raise InvalidRefreshToken()
    try:
        token = _PresentedRefreshToken(raw)
        token[jwt_settings.JTI_CLAIM]
    except (TokenError, KeyError):
        raise InvalidRefreshToken() from None
    if token.get("tid") != tenant_id:
        raise InvalidRefreshToken()
    return token


def _presented_use(token: RefreshToken, *, tenant_id: str, now: datetime) -> tuple[User, RefreshTokenChain, bool]:
    """Inside a transaction: lock the token's user (active, of this tenant), find its chain
    (live, not past its end) and use the token once. Returns the user, the chain, and whether
    this use was the first; a second use ends the chain (OWASP: a used refresh token presented
    again means a copy is out there, so the newer tokens of its chain die too)."""
    user_id, chain_id = as_uuid(token.get(jwt_settings.USER_ID_CLAIM)), as_uuid(token.get("chain"))
    if user_id is None or chain_id is None:
        raise InvalidRefreshToken()
    user = User.objects.select_for_update().filter(pk=user_id, tenant_id=tenant_id, is_active=True).first()
    outstanding = (
        OutstandingToken.objects.filter(jti=str(token[jwt_settings.JTI_CLAIM]), user_id=user_id)
        .annotate(used=Exists(BlacklistedToken.objects.filter(token=OuterRef("pk"))))
        .first()
    )
    chain = RefreshTokenChain.objects.filter(pk=chain_id, user_id=user_id).first()
    if user is None or outstanding is None or chain is None or chain.revoked_at is not None or chain.expires_at <= now:
        raise InvalidRefreshToken()
    if outstanding.used:  # a copy: every use of a user's tokens holds the user's row lock, so this read is current
        RefreshTokenChain.objects.filter(pk=chain.pk).update(revoked_at=now)
        return user, chain, False
    BlacklistedToken.objects.create(token=outstanding)
    return user, chain, True


def token_refresh(*, refresh_token: str, tenant_id: str, ctx: RequestContext | None = None) -> dict:
    """Rotation: the presented refresh token stops working and the next pair of its chain is
    issued, with the same ``amr`` and ``auth_time`` and the user's current ``admin``.
    Raises ``InvalidRefreshToken``; a reused token also ends its chain (audited)."""
    try:
        token = _presented(refresh_token, tenant_id=tenant_id)
        amr = token.get("amr")
        amr = [str(a) for a in amr] if isinstance(amr, list) else list(AMR_PASSWORD)
        with transaction.atomic():
            user, chain, first_use = _presented_use(token, tenant_id=tenant_id, now=timezone.now())
            if first_use:
                body = token_body(_refresh_issue(user=user, chain=chain, amr=amr))
            else:
                audit_record(kind=AuditEvent.Kind.REFRESH_TOKEN_REUSED, tenant_id=tenant_id, user=user, ctx=ctx)
    except InvalidRefreshToken:
        metrics.refresh(result="invalid")
        raise
    if not first_use:
        metrics.refresh(result="reused")
        raise InvalidRefreshToken()
    metrics.refresh(result="success")
    return body


def token_revoke(*, refresh_token: str, tenant, ctx: RequestContext | None = None) -> User:
    """Sign-out: the refresh token and its whole chain stop working; audited.
    Raises ``InvalidRefreshToken``."""
    token = _presented(refresh_token, tenant_id=tenant.id)
    with transaction.atomic():
        user, chain, first_use = _presented_use(token, tenant_id=tenant.id, now=timezone.now())
        RefreshTokenChain.objects.filter(pk=chain.pk).update(revoked_at=timezone.now())
        kind = AuditEvent.Kind.LOGOUT if first_use else AuditEvent.Kind.REFRESH_TOKEN_REUSED
        audit_record(kind=kind, tenant_id=tenant.id, user=user, ctx=ctx)
    if not first_use:
        raise InvalidRefreshToken()
    return user

"""The REST API's JWTs, minted by our code after our own checks.

Tokens are signed and verified by ``tenants.signing`` with the tenant's own key (``kid``
in the header, ``iss`` the tenant's issuer), so anyone can verify an access token with the
tenant's JWKS alone. simplejwt's token classes are no longer used (they sign with one
project-wide key); its token-blacklist tables still record which refresh tokens exist and
which were used.

A sign-in begins a refresh-token chain (``RefreshTokenChain``); each refresh uses its token
once and issues the next one in the same chain. Every acceptance of a refresh token, and
every revocation, runs under the user's row lock (``select_for_update``), so a revocation
and a racing refresh are judged one after the other: once ``refresh_tokens_revoke`` has
answered, no refresh token of that user works, including one a racing refresh minted.
"""
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import metrics
from accounts.audit import RequestContext, audit_record
from accounts.errors import InvalidRefreshToken
from accounts.models import AuditEvent, RefreshTokenChain, User
from accounts.selectors import as_uuid
from tenants.signing import InvalidJWT, issuer_url, jti_new, jwt_sign, jwt_verify

# Tokens made outside a request (commands, tests, the bench's set-up) name this origin in `iss`.
ORIGIN_OUTSIDE_A_REQUEST = "http://localhost"

AMR_PASSWORD = ["pwd"]
AMR_OTP = ["pwd", "otp", "mfa"]
AMR_RECOVERY = ["pwd", "mfa"]
AMR_PASSKEY = ["pwd", "hwk", "mfa"]
AMR_REMEMBERED = ["pwd", "swk", "mfa"]  # the password and a remembered browser's key (after an earlier second factor)  # RFC 8176: proof of possession of a key held by an authenticator


def token_pair_issue(*, user: User, amr: list[str], ctx: RequestContext | None = None) -> dict:
    """The contract's token body for a user who has just passed every required factor: a
    new chain, starting now. Call it inside the transaction that records the sign-in."""
    now = timezone.now()
    chain = RefreshTokenChain.objects.create(
        user=user, auth_time=now, expires_at=now + timedelta(seconds=settings.REFRESH_TOKEN_MAX_SECONDS)
    )
    return _pair_issue(user=user, chain=chain, amr=amr, ctx=ctx)


def _pair_issue(*, user: User, chain: RefreshTokenChain, amr: list[str], ctx: RequestContext | None) -> dict:
    """The next refresh token of ``chain`` and an access token beside it, signed with the
    tenant's key. The refresh token is recorded in simplejwt's outstanding-token table by its
    jti only: a database dump must not hold a usable credential."""
    now = timezone.now()
    iat = int(now.timestamp())
    refresh_exp = min(now + timedelta(seconds=settings.REFRESH_TOKEN_SECONDS), chain.expires_at)
    common = {
        "iss": issuer_url(origin=(ctx and ctx.origin) or ORIGIN_OUTSIDE_A_REQUEST, tenant_id=user.tenant_id),
        "sub": str(user.pk),
        "tid": user.tenant_id,
        "amr": list(amr),
        "admin": bool(user.is_tenant_admin),
        "auth_time": int(chain.auth_time.timestamp()),
        "chain": str(chain.pk),  # the access token too: a password change through the API keeps its caller's chain
        "iat": iat,
    }
    refresh_jti = jti_new()
    refresh = {**common, "token_type": "refresh", "jti": refresh_jti, "exp": int(refresh_exp.timestamp())}
    access = {**common, "token_type": "access", "jti": jti_new(), "exp": iat + settings.ACCESS_TOKEN_SECONDS}
    OutstandingToken.objects.create(
        user=user, jti=refresh_jti, token="", created_at=now, expires_at=datetime.fromtimestamp(refresh["exp"], tz=dt_timezone.utc)
    )
    return {
        "accessToken": jwt_sign(tenant_id=user.tenant_id, claims=access),
        "refreshToken": jwt_sign(tenant_id=user.tenant_id, claims=refresh),
        "tokenType": "Bearer",
        "expiresIn": settings.ACCESS_TOKEN_SECONDS,
    }


def access_token_claims(raw, *, tenant_id: str) -> dict:
    """The claims of an access token of this tenant (signature, expiry, type, tenant), or
    ``InvalidJWT``. The Bearer authentication of the API uses it."""
    return jwt_verify(raw, tenant_id=tenant_id, token_type="access")


def refresh_tokens_revoke(*, user: User, keep_chain=None) -> int:
    """End every refresh-token chain of ``user`` (password change, MFA reset, deletion), but
    ``keep_chain`` (the id of the chain of a user changing their own password through the API).

    Under the user's row lock, like every refresh: a refresh that raced with this either
    finished first (its new token is in a chain ended here) or waits and finds its chain
    ended. Call it inside the transaction of the change it belongs to."""
    with transaction.atomic(savepoint=False):  # inside a caller's transaction, part of it
        User.objects.select_for_update().filter(pk=user.pk).first()
        now = timezone.now()
        # The OpenID Provider's tokens of the user too (django-oauth-toolkit's models).
        get_refresh_token_model().objects.filter(user=user, revoked__isnull=True).update(revoked=now, updated=now)
        get_access_token_model().objects.filter(user=user).delete()
        chains = RefreshTokenChain.objects.filter(user=user, revoked_at__isnull=True)
        keep = as_uuid(keep_chain) if keep_chain is not None else None
        if keep is not None:
            chains = chains.exclude(pk=keep)
        return chains.update(revoked_at=now)


def _presented(raw, *, tenant_id: str) -> dict:
    """The claims of a refresh token of this tenant with a valid signature, expiry and type
    (no database). Whether it was used is read by ``_presented_use`` under the user's lock."""
    try:
        return jwt_verify(raw, tenant_id=tenant_id, token_type="refresh")
    except InvalidJWT:
        raise InvalidRefreshToken() from None


def _presented_use(token: dict, *, tenant_id: str, now: datetime) -> tuple[User, RefreshTokenChain, bool]:
    """Inside a transaction: lock the token's user (active, of this tenant), find its chain
    (live, not past its end) and use the token once. Returns the user, the chain, and whether
    this use was the first; a second use ends the chain (OWASP: a used refresh token presented
    again means a copy is out there, so the newer tokens of its chain die too)."""
    user_id, chain_id = as_uuid(token.get("sub")), as_uuid(token.get("chain"))
    if user_id is None or chain_id is None:
        raise InvalidRefreshToken()
    user = User.objects.select_for_update().filter(pk=user_id, tenant_id=tenant_id, is_active=True).first()
    outstanding = (
        OutstandingToken.objects.filter(jti=str(token["jti"]), user_id=user_id)
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
                body = _pair_issue(user=user, chain=chain, amr=amr, ctx=ctx)
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

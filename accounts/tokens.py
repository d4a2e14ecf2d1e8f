"""JWTs, minted by our code after our own checks (simplejwt's stock obtain view is never mounted)."""
from contextlib import contextmanager

from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.errors import InvalidRefreshToken

AMR_PASSWORD = ["pwd"]
AMR_OTP = ["pwd", "otp", "mfa"]
AMR_RECOVERY = ["pwd", "mfa"]


def token_pair_issue(*, user, amr: list[str]) -> dict:
    """The contract's token body for a user who has passed every required factor.

    The refresh token's row in simplejwt's outstanding-token table is written here in one
    INSERT, without the token itself: the jti is all we look up, and a database dump must
    not hold a usable credential.
    """
    refresh = RefreshToken()
    refresh[jwt_settings.USER_ID_CLAIM] = str(user.pk)
    refresh["tid"] = user.tenant_id
    refresh["amr"] = list(amr)
    refresh["admin"] = bool(user.is_tenant_admin)
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[jwt_settings.JTI_CLAIM],
        token="",
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return token_body(refresh)


def token_body(refresh: RefreshToken) -> dict:
    access = refresh.access_token
    return {
        "accessToken": str(access),
        "refreshToken": str(refresh),
        "tokenType": "Bearer",
        "expiresIn": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    }


def refresh_tokens_revoke(*, user) -> int:
    """Blacklist every outstanding refresh token of ``user`` (MFA reset, password change)."""
    with transaction.atomic():
        ids = list(
            OutstandingToken.objects.filter(user=user)
            .exclude(blacklistedtoken__isnull=False)
            .values_list("id", flat=True)
        )
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token_id=i) for i in ids], ignore_conflicts=True
        )
    return len(ids)


class _PresentedRefreshToken(RefreshToken):
    """A refresh token as presented: signature (configured algorithm only), expiry and type are
    verified. simplejwt's blacklist look-up is left out on purpose: every use of a presented
    token blacklists it with one INSERT on a unique key (``_use_once``), which refuses a token
    that is already blacklisted and lets only one of two parallel uses win."""

    def verify(self, *args, **kwargs) -> None:
        Token.verify(self, *args, **kwargs)


def _refresh_token_read(raw, *, tenant) -> tuple[RefreshToken, OutstandingToken]:
    """A refresh token we minted, unexpired, of this tenant, of an active user (one query)."""
    if not isinstance(raw, str) or not raw or len(raw) > 4096:
        raise InvalidRefreshToken()
    try:
        token = _PresentedRefreshToken(raw)
        jti = token[jwt_settings.JTI_CLAIM]
    except (TokenError, KeyError):
        raise InvalidRefreshToken() from None
    if token.get("tid") != tenant.id:
        raise InvalidRefreshToken()
    outstanding = (
        OutstandingToken.objects.select_related("user", "user__tenant")
        .filter(jti=jti, user__tenant=tenant, user__is_active=True)
        .first()
    )
    if outstanding is None or str(outstanding.user_id) != str(token.get(jwt_settings.USER_ID_CLAIM)):
        raise InvalidRefreshToken()
    return token, outstanding


@contextmanager
def _use_once(outstanding: OutstandingToken):
    """Blacklist the token and do the rest in the same transaction; if it already was
    blacklisted (used, revoked, or used by a parallel request), nothing happens."""
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
            yield
    except IntegrityError:
        raise InvalidRefreshToken() from None


def token_refresh(*, refresh_token: str, tenant) -> dict:
    """Rotation (simplejwt's ROTATE_REFRESH_TOKENS + BLACKLIST_AFTER_ROTATION, race-proof):
    the presented refresh token stops working and a new pair is issued with the same ``amr``
    and the user's current ``admin``. Raises ``InvalidRefreshToken``."""
    token, outstanding = _refresh_token_read(refresh_token, tenant=tenant)
    amr = token.get("amr")
    amr = [str(a) for a in amr] if isinstance(amr, list) else list(AMR_PASSWORD)
    with _use_once(outstanding):
        return token_pair_issue(user=outstanding.user, amr=amr)


def token_revoke(*, refresh_token: str, tenant, ctx=None):
    """Sign-out: the refresh token stops working; audited. Raises ``InvalidRefreshToken``."""
    from accounts.audit import audit_record
    from accounts.models import AuditEvent

    _token, outstanding = _refresh_token_read(refresh_token, tenant=tenant)
    with _use_once(outstanding):
        audit_record(kind=AuditEvent.Kind.LOGOUT, tenant_id=tenant.id, user=outstanding.user, ctx=ctx)
    return outstanding.user

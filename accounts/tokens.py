"""JWTs, minted by our code after our own checks (simplejwt's stock obtain view is never mounted)."""
from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.errors import InvalidRefreshToken

AMR_PASSWORD = ["pwd"]
AMR_OTP = ["pwd", "otp", "mfa"]
AMR_RECOVERY = ["pwd", "mfa"]


def token_pair_issue(*, user, amr: list[str]) -> dict:
    """The contract's token body for a user who has passed every required factor."""
    # simplejwt keeps the whole token in its outstanding-token row; the jti is all we look up,
    # and a database dump must not hold a usable credential. One transaction: never the row
    # with the token in it alone (the database may go away between the two statements).
    with transaction.atomic():
        refresh = RefreshToken.for_user(user)
        OutstandingToken.objects.filter(jti=refresh[jwt_settings.JTI_CLAIM]).update(token="")
    refresh["tid"] = user.tenant_id
    refresh["amr"] = list(amr)
    refresh["admin"] = bool(user.is_tenant_admin)
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


def _refresh_token_read(raw, *, tenant) -> tuple[RefreshToken, OutstandingToken, object]:
    """A refresh token we minted, unexpired, not blacklisted, of this tenant, of an active user."""
    from accounts.selectors import user_get_or_none

    if not isinstance(raw, str) or not raw or len(raw) > 4096:
        raise InvalidRefreshToken()
    try:
        token = RefreshToken(raw)  # signature (configured algorithm only), expiry, type, blacklist
        jti = token[jwt_settings.JTI_CLAIM]
    except (TokenError, KeyError):
        raise InvalidRefreshToken() from None
    if token.get("tid") != tenant.id:
        raise InvalidRefreshToken()
    outstanding = OutstandingToken.objects.filter(jti=jti).first()
    user = user_get_or_none(tenant=tenant, user_id=token.get(jwt_settings.USER_ID_CLAIM))
    if outstanding is None or user is None or not user.is_active:
        raise InvalidRefreshToken()
    return token, outstanding, user


def _blacklist_once(outstanding: OutstandingToken) -> None:
    """Blacklist, or fail if it already is: of two parallel uses of one token, one wins."""
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        raise InvalidRefreshToken() from None


def token_refresh(*, refresh_token: str, tenant) -> dict:
    """Rotation (simplejwt's ROTATE_REFRESH_TOKENS + BLACKLIST_AFTER_ROTATION, race-proof):
    the presented refresh token stops working and a new pair is issued with the same ``amr``
    and the user's current ``admin``. Raises ``InvalidRefreshToken``."""
    token, outstanding, user = _refresh_token_read(refresh_token, tenant=tenant)
    amr = token.get("amr")
    amr = [str(a) for a in amr] if isinstance(amr, list) else list(AMR_PASSWORD)
    with transaction.atomic():
        _blacklist_once(outstanding)
        return token_pair_issue(user=user, amr=amr)


def token_revoke(*, refresh_token: str, tenant, ctx=None):
    """Sign-out: the refresh token stops working; audited. Raises ``InvalidRefreshToken``."""
    from accounts.audit import audit_record
    from accounts.models import AuditEvent

    _token, outstanding, user = _refresh_token_read(refresh_token, tenant=tenant)
    with transaction.atomic():
        _blacklist_once(outstanding)
        audit_record(kind=AuditEvent.Kind.LOGOUT, tenant_id=tenant.id, user=user, ctx=ctx)
    return user

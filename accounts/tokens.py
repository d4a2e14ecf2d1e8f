"""JWTs, minted by our code after our own checks (simplejwt's stock obtain view is never mounted)."""
from contextlib import contextmanager
from functools import cache, lru_cache

import jwt
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from jwt.algorithms import HMACAlgorithm
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.errors import InvalidRefreshToken
from accounts.models import User
from accounts.selectors import as_uuid
from config import sql


class _HmacKeyCheckedOnce(HMACAlgorithm):
    """PyJWT's HS256, whose key check (no PEM, SSH, DER or JWK text as an HMAC secret: the
    algorithm-confusion defence) runs once per key rather than on every token: it costs
    ~20 µs, three times per refresh. Only keys from our settings reach it (a token names
    no key, and the algorithm is pinned); a refused key is refused every time."""

    @lru_cache(maxsize=8)  # noqa: B019 - one instance, registered for the process's lifetime
    def prepare_key(self, key):
        return super().prepare_key(key)


def use_hmac_key_checked_once() -> None:
    """Register ``_HmacKeyCheckedOnce`` for HS256 with PyJWT (``AccountsConfig.ready``)."""
    jwt.unregister_algorithm("HS256")
    jwt.register_algorithm("HS256", _HmacKeyCheckedOnce(HMACAlgorithm.SHA256))


AMR_PASSWORD = ["pwd"]
AMR_OTP = ["pwd", "otp", "mfa"]
AMR_RECOVERY = ["pwd", "mfa"]


def token_pair_issue(*, user, amr: list[str]) -> dict:
    """The contract's token body for a user who has passed every required factor.

    The refresh token's row in simplejwt's outstanding-token table is written here in one
    INSERT, without the token itself: the jti is all we look up, and a database dump must
    not hold a usable credential.
    """
    refresh, row = token_pair_new(user=user, amr=amr)
    sql.insert(row)
    return token_body(refresh)


def token_pair_new(*, user, amr: list[str]) -> tuple[RefreshToken, OutstandingToken]:
    """A refresh token for ``user`` and its outstanding-token row, not yet written (a sign-in
    writes it together with the sign-in's own rows; see ``token_pair_issue``)."""
    refresh = _refresh_new(user_id=user.pk, tenant_id=user.tenant_id, amr=amr)
    refresh["admin"] = bool(user.is_tenant_admin)
    return refresh, OutstandingToken(user=user, **_outstanding_fields(refresh))


def _refresh_new(*, user_id, tenant_id: str, amr: list[str]) -> RefreshToken:
    refresh = RefreshToken()
    refresh[jwt_settings.USER_ID_CLAIM] = str(user_id)
    refresh["tid"] = tenant_id
    refresh["amr"] = list(amr)
    return refresh


def _outstanding_fields(refresh: RefreshToken) -> dict:
    return {
        "jti": refresh[jwt_settings.JTI_CLAIM],
        "token": "",
        "created_at": refresh.current_time,
        "expires_at": datetime_from_epoch(refresh["exp"]),
    }


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


def _refresh_token_read(raw, *, tenant_id: str) -> tuple[RefreshToken, OutstandingToken]:
    """A refresh token we minted, unexpired, of this tenant, of an active user (one query)."""
    token = _presented(raw, tenant_id=tenant_id)
    return token, _outstanding_of(token, tenant_id=tenant_id)


def _outstanding_of(token: RefreshToken, *, tenant_id: str) -> OutstandingToken:
    outstanding = _outstanding_get(token[jwt_settings.JTI_CLAIM], tenant_id=tenant_id)
    if outstanding is None or str(outstanding.user_id) != str(token.get(jwt_settings.USER_ID_CLAIM)):
        raise InvalidRefreshToken()
    return outstanding


@cache
def _outstanding_sql() -> str:
    return (
        f"SELECT {sql.columns(OutstandingToken, 'o')}, {sql.columns(User, 'u')} "
        f'FROM "{OutstandingToken._meta.db_table}" o JOIN "{User._meta.db_table}" u ON u."id" = o."user_id" '
        'WHERE o."jti" = %s AND u."tenant_id" = %s AND u."is_active" = %s'
    )


def _outstanding_get(jti: str, *, tenant_id: str) -> OutstandingToken | None:
    """The token's row with its user, if that user is active and of the tenant (one statement)."""
    with sql.prepared_cursor(connection) as cursor:
        cursor.execute(_outstanding_sql(), [str(jti), tenant_id, True])
        row = cursor.fetchone()
    if row is None:
        return None
    outstanding, outstanding.user = sql.load_joined(row, OutstandingToken, User)
    return outstanding


@contextmanager
def _use_once(outstanding: OutstandingToken):
    """Blacklist the token and do the rest in the same transaction; if it already was
    blacklisted (used, revoked, or used by a parallel request), nothing happens."""
    try:
        with transaction.atomic():
            sql.insert(BlacklistedToken(token=outstanding))
            yield
    except IntegrityError:
        raise InvalidRefreshToken() from None


def token_refresh(*, refresh_token: str, tenant_id: str) -> dict:
    """Rotation (simplejwt's ROTATE_REFRESH_TOKENS + BLACKLIST_AFTER_ROTATION, race-proof):
    the presented refresh token stops working and a new pair is issued with the same ``amr``
    and the user's current ``admin``. Raises ``InvalidRefreshToken``.

    On PostgreSQL the whole rotation (read, use once, issue) is one statement (``_ROTATE``);
    elsewhere it is a read, then a transaction of two INSERTs. Both refuse the same tokens."""
    token = _presented(refresh_token, tenant_id=tenant_id)
    amr = token.get("amr")
    amr = [str(a) for a in amr] if isinstance(amr, list) else list(AMR_PASSWORD)
    if connection.vendor == "postgresql":
        return _rotate_in_one_statement(token, tenant_id=tenant_id, amr=amr)
    outstanding = _outstanding_of(token, tenant_id=tenant_id)
    with _use_once(outstanding):
        return token_pair_issue(user=outstanding.user, amr=amr)


# PostgreSQL: data-modifying CTEs run as one atomic statement. ``presented`` is the row the
# token stands for (an active user of this tenant, the token's own user); ``used`` blacklists
# it, on a unique key, so of two parallel uses only one gets a row back; only then is the new
# token's row written. No row back: the token is unknown, used, revoked or not this user's.
_ROTATE = """
WITH presented AS (
    SELECT o."id", o."user_id", u."is_tenant_admin"
    FROM "token_blacklist_outstandingtoken" o JOIN "accounts_user" u ON u."id" = o."user_id"
    WHERE o."jti" = %s AND o."user_id" = %s AND u."tenant_id" = %s AND u."is_active"
), used AS (
    INSERT INTO "token_blacklist_blacklistedtoken" ("token_id", "blacklisted_at")
    SELECT "id", %s FROM presented
    ON CONFLICT ("token_id") DO NOTHING
    RETURNING "token_id"
), issued AS (
    INSERT INTO "token_blacklist_outstandingtoken" ("user_id", "jti", "token", "created_at", "expires_at")
    SELECT p."user_id", %s, %s, %s, %s FROM presented p JOIN used ON used."token_id" = p."id"
    RETURNING "user_id"
)
SELECT p."is_tenant_admin" FROM issued JOIN presented p ON p."user_id" = issued."user_id"
"""


def _rotate_in_one_statement(token: RefreshToken, *, tenant_id: str, amr: list[str]) -> dict:
    user_id = as_uuid(token.get(jwt_settings.USER_ID_CLAIM))
    if user_id is None:
        raise InvalidRefreshToken()
    refresh = _refresh_new(user_id=user_id, tenant_id=tenant_id, amr=amr)
    new = _outstanding_fields(refresh)
    params = [token[jwt_settings.JTI_CLAIM], user_id, tenant_id, timezone.now(),
              new["jti"], new["token"], new["created_at"], new["expires_at"]]
    try:
        with sql.prepared_cursor(connection) as cursor:
            cursor.execute(_ROTATE, params)
            row = cursor.fetchone()
    except IntegrityError:  # the user was deleted meanwhile
        raise InvalidRefreshToken() from None
    if row is None:
        raise InvalidRefreshToken()
    refresh["admin"] = bool(row[0])
    return token_body(refresh)


def token_revoke(*, refresh_token: str, tenant, ctx=None):
    """Sign-out: the refresh token stops working; audited. Raises ``InvalidRefreshToken``."""
    from accounts.audit import audit_record
    from accounts.models import AuditEvent

    _token, outstanding = _refresh_token_read(refresh_token, tenant_id=tenant.id)
    outstanding.user.tenant = tenant
    with _use_once(outstanding):
        audit_record(kind=AuditEvent.Kind.LOGOUT, tenant_id=tenant.id, user=outstanding.user, ctx=ctx)
    return outstanding.user

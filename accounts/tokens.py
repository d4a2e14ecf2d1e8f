"""JWTs, minted by our code after our own checks (simplejwt's stock obtain view is never mounted)."""
from django.conf import settings
from django.db import transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

AMR_PASSWORD = ["pwd"]
AMR_OTP = ["pwd", "otp", "mfa"]
AMR_RECOVERY = ["pwd", "mfa"]


def token_pair_issue(*, user, amr: list[str]) -> dict:
    """The contract's token body for a user who has passed every required factor."""
    refresh = RefreshToken.for_user(user)
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

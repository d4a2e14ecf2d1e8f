"""Bearer access tokens on the admin calls: only ours, only for their tenant, only for admins
(with MFA when the admin has MFA)."""
import base64
import hashlib
import hmac
import json
from datetime import timedelta
from http import HTTPStatus

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

from accounts.models import AuditEvent, MfaMethod, User
from accounts.tokens import AMR_OTP, AMR_PASSWORD, token_pair_issue
from mfa.models import TOTPDevice
from tenants.models import SigningKey, Tenant
from tenants.signing import jwt_sign
from tests.api.helpers import access_token, assert_error, call, v2

ADMIN_CALLS = [
    ("get", "Users", None),
    ("post", "Users", {"username": "newbie", "email": "newbie@example.com"}),
    ("get", "Users/{uid}", None),
    ("put", "Users/{uid}", {"resetTOTP": True}),
    ("patch", "Users/{uid}", {"unlock": True}),
    ("delete", "Users/{uid}", None),
    ("get", "Users/{uid}/events", None),
    ("get", "Settings", None),
    ("put", "Settings", {"mfaMaxAttempts": 3}),
    ("patch", "Settings", {"mfaRequired": True}),
]


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def hmac_signed(claims: dict, *, secret: bytes, kid: str, alg: str = "HS256") -> str:
    """A token whose header names our key but is HMAC-signed with ``secret`` (algorithm confusion)."""
    signing_input = f"{b64({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{b64(claims)}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input.encode(), digest).digest()).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


@pytest.fixture
def target(user_factory):
    return user_factory("bob", mfa_method=MfaMethod.TOTP)


def snapshot():
    """Everything an admin call could change."""
    return (
        list(User.objects.order_by("pk").values()),
        list(Tenant.objects.order_by("pk").values()),
        list(AuditEvent.objects.order_by("pk").values()),
        list(TOTPDevice.objects.order_by("pk").values()),
    )


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
def test_admin_calls_need_a_token(client, admin, target, method, path, body):
    before = snapshot()
    response = call(client, method, v2("acme", path.format(uid=target.pk)), body)
    assert_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert snapshot() == before


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
def test_admin_calls_refuse_a_non_admin(client, admin, target, user_factory, method, path, body):
    plain = user_factory("plain")
    before = snapshot()
    response = call(client, method, v2("acme", path.format(uid=target.pk)), body, token=access_token(plain))
    assert_error(response, HTTPStatus.FORBIDDEN, "forbidden")
    assert snapshot() == before


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
def test_mfa_admin_with_password_only_token_is_refused(client, admin, target, method, path, body):
    # Impossible through the API (an MFA admin's login answers an mfaToken, not tokens):
    # signed directly with the tenant's key to prove the check itself.
    claims = {**claims_of(access_token(admin, AMR_OTP)), "amr": AMR_PASSWORD}
    before = snapshot()
    token = jwt_sign(tenant_id="acme", claims=claims)
    assert_error(call(client, method, v2("acme", path.format(uid=target.pk)), body, token=token), HTTPStatus.FORBIDDEN, "forbidden")
    # No amr at all is no MFA either.
    del claims["amr"]
    token = jwt_sign(tenant_id="acme", claims=claims)
    assert_error(call(client, method, v2("acme", path.format(uid=target.pk)), body, token=token), HTTPStatus.FORBIDDEN, "forbidden")
    assert snapshot() == before


def test_admin_without_mfa_may_use_a_password_token(client, user_factory):
    boss = user_factory("boss", is_admin=True)
    assert call(client, "get", v2("acme", "Settings"), token=access_token(boss, AMR_PASSWORD)).status_code == HTTPStatus.OK


def test_admin_login_through_the_api_reaches_the_users_api(client, admin, frozen):
    from tests.api.helpers import code_now
    from tests.conftest import PASSWORD

    body = call(client, "post", v2("acme", "auth/login"), {"username": "root", "password": PASSWORD}).json()
    assert "accessToken" not in body
    pair = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": body["mfaToken"], "code": code_now()}).json()
    assert call(client, "get", v2("acme", "Users"), token=pair["accessToken"]).status_code == HTTPStatus.OK


def bad_tokens(admin, tenant_factory):
    good = access_token(admin, AMR_OTP)
    header, payload, signature = good.split(".")
    claims = claims_of(good)
    key = SigningKey.objects.get(tenant_id="acme")
    public_pem = jwt.PyJWK(key.public_jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    tenant_factory("other")
    return {
        "forged signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "changed payload": f"{header}.{b64({**claims, 'sub': '00000000-0000-0000-0000-000000000000'})}.{signature}",
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none, no dot": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}",
        "HS256 with another key": jwt.encode(claims, "another-key-" + "x" * 40, algorithm="HS256"),
        "HS256 with our public key as secret": hmac_signed(claims, secret=public_pem, kid=key.kid),
        "HS512 with the SECRET_KEY": hmac_signed(claims, secret=settings.SECRET_KEY.encode(), kid=key.kid, alg="HS512"),
        "no kid": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "expired": jwt_sign(tenant_id="acme", claims={**claims, "exp": claims["iat"] - 1}),
        "another tenant's key": jwt_sign(tenant_id="other", claims=claims),
        "refresh token": token_pair_issue(user=admin, amr=AMR_OTP)["refreshToken"],
        "not a jwt": "hello",
    }


@pytest.mark.filterwarnings("ignore:The HMAC key is")
@pytest.mark.parametrize(
    "kind",
    ["forged signature", "changed payload", "alg none", "alg none, no dot", "HS256 with another key",
     "HS256 with our public key as secret", "HS512 with the SECRET_KEY", "no kid", "expired",
     "another tenant's key", "refresh token", "not a jwt"],
)
def test_bad_tokens_are_refused(client, admin, target, tenant_factory, kind):
    token = bad_tokens(admin, tenant_factory)[kind]
    before = snapshot()
    for method, path, body in ADMIN_CALLS:
        response = call(client, method, v2("acme", path.format(uid=target.pk)), body, token=token)
        assert_error(response, HTTPStatus.UNAUTHORIZED, "invalid_token")
    assert snapshot() == before


def test_token_expires(client, admin, time_machine):
    time_machine.move_to("2030-05-17 12:00:00Z", tick=False)
    token = access_token(admin, AMR_OTP)
    assert call(client, "get", v2("acme", "Settings"), token=token).status_code == HTTPStatus.OK
    time_machine.shift(timedelta(seconds=301))
    assert_error(call(client, "get", v2("acme", "Settings"), token=token), 401, "invalid_token")


def test_authorization_header_without_bearer_word(client, admin):
    response = client.get(v2("acme", "Settings"), HTTP_AUTHORIZATION="Bearer")
    assert_error(response, HTTPStatus.UNAUTHORIZED, "invalid_token")
    response = client.get(v2("acme", "Settings"), HTTP_AUTHORIZATION=f"Basic {access_token(admin)}")
    assert_error(response, HTTPStatus.UNAUTHORIZED, "invalid_token")


def test_token_of_tenant_a_refused_on_tenant_b(client, admin, tenant_factory, user_factory):
    other = tenant_factory("other")
    # The same username and even the same role in B change nothing: the token is A's.
    user_factory("root", tenant=other, is_admin=True)
    theirs = user_factory("carol", tenant=other)
    token = access_token(admin, AMR_OTP)
    before = snapshot()
    for method, path, body in ADMIN_CALLS:
        response = call(client, method, v2("other", path.format(uid=theirs.pk)), body, token=token)
        assert_error(response, HTTPStatus.UNAUTHORIZED, "invalid_token")
    # A token whose tid was rewritten to B, signed with A's key: B's keys do not verify it.
    forged = jwt_sign(tenant_id="acme", claims={**claims_of(token), "tid": "other"})
    assert_error(call(client, "get", v2("other", "Users"), token=forged), 401, "invalid_token")
    # Signed with B's own key (as if B's key leaked into A's token): A's user is not B's.
    forged = jwt_sign(tenant_id="other", claims={**claims_of(token), "tid": "other", "iss": "http://testserver/tenant/other"})
    assert_error(call(client, "get", v2("other", "Users"), token=forged), 401, "invalid_token")
    assert snapshot() == before


def test_token_of_a_deleted_or_deactivated_admin_is_refused(client, admin):
    token = access_token(admin, AMR_OTP)
    User.objects.filter(pk=admin.pk).update(is_active=False)
    assert_error(call(client, "get", v2("acme", "Users"), token=token), 401, "invalid_token")


def test_demoted_admin_loses_access_at_once(client, admin):
    token = access_token(admin, AMR_OTP)
    User.objects.filter(pk=admin.pk).update(is_tenant_admin=False)
    assert_error(call(client, "get", v2("acme", "Users"), token=token), 403, "forbidden")


def test_unknown_tenant_is_404_with_or_without_token(client, admin):
    assert_error(call(client, "get", v2("ghost-tenant", "Users")), HTTPStatus.NOT_FOUND, "not_found")
    assert_error(call(client, "get", v2("ghost-tenant", "Users"), token=access_token(admin, AMR_OTP)), 404, "not_found")


def test_password_only_admin_token_refused_once_the_tenant_requires_mfa(client, user_factory, tenant):
    boss = user_factory("boss", is_admin=True)
    token = access_token(boss, AMR_PASSWORD)
    assert call(client, "get", v2("acme", "Users"), token=token).status_code == HTTPStatus.OK
    Tenant.objects.filter(pk="acme").update(mfa_required=True)
    assert_error(call(client, "get", v2("acme", "Users"), token=token), HTTPStatus.FORBIDDEN, "forbidden")


# --- PyJWT's own algorithm-confusion defence stays in force ---------------------------------


def test_hs256_still_refuses_an_asymmetric_key_as_its_secret():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for _ in range(2):  # a refused key is refused every time, never remembered
        with pytest.raises(jwt.InvalidKeyError):
            jwt.encode({"sub": "x"}, pem, algorithm="HS256")

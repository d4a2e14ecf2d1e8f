"""Per-tenant signing keys: the JWKS alone verifies the REST API's tokens (PyJWT, as an
outside program would), keys are encrypted at rest, rotation keeps old tokens valid until
they expire, and then the old key leaves the JWKS."""
from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import jwt
import pytest
from django.core.management import call_command

from accounts.tokens import AMR_OTP
from tenants.models import SigningKey
from tenants.signing import private_pem_of, signing_key_current
from tests.api.helpers import access_token, assert_error, call, code_now, v2
from tests.conftest import PASSWORD


def verify_with_jwks(client, tenant_id: str, token: str, *, origin: str = "http://testserver") -> dict:
    """What an outside program does: fetch the JWKS, pick the key by kid, verify with PyJWT."""
    jwks = client.get(f"/tenant/{tenant_id}/.well-known/jwks.json").json()
    kid = jwt.get_unverified_header(token)["kid"]
    matching = [k for k in jwks["keys"] if k["kid"] == kid]
    assert matching, f"kid {kid} not in the JWKS"
    return jwt.decode(token, jwt.PyJWK(matching[0]).key, algorithms=[matching[0]["alg"]], issuer=f"{origin}/tenant/{tenant_id}")


def test_api_tokens_verify_with_pyjwt_against_the_jwks_alone(client, totp_user):
    mfa_token = call(client, "post", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD}).json()["mfaToken"]
    pair = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": mfa_token, "code": code_now()}).json()
    header = jwt.get_unverified_header(pair["accessToken"])
    assert header["alg"] == "RS256" and header["kid"]
    claims = verify_with_jwks(client, "acme", pair["accessToken"])
    assert claims["sub"] == str(totp_user.pk) and claims["tid"] == "acme" and claims["amr"] == ["pwd", "otp", "mfa"]
    # The refreshed pair too.
    refreshed = call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}).json()
    assert verify_with_jwks(client, "acme", refreshed["accessToken"])["sub"] == str(totp_user.pk)


def test_each_tenant_has_its_own_key_and_jwks(client, tenant_factory, user_factory, tenant):
    other = tenant_factory("other")
    alice_a = user_factory("alice")
    alice_b = user_factory("alice", tenant=other)
    token_a, token_b = access_token(alice_a), access_token(alice_b)
    assert jwt.get_unverified_header(token_a)["kid"] != jwt.get_unverified_header(token_b)["kid"]
    # Minted outside a request (a test helper): the issuer names http://localhost.
    verify_with_jwks(client, "acme", token_a, origin="http://localhost")
    with pytest.raises(AssertionError, match="not in the JWKS"):
        verify_with_jwks(client, "other", token_a, origin="http://localhost")


def test_private_keys_are_encrypted_at_rest(tenant):
    key = signing_key_current(tenant_id="acme")
    assert "PRIVATE KEY" not in key.private_key_encrypted
    assert private_pem_of(key).startswith("-----BEGIN PRIVATE KEY-----")
    assert "d" not in key.public_jwk and "p" not in key.public_jwk  # the JWK is public only


def test_rotation_old_tokens_verify_until_they_expire_then_the_key_leaves(client, admin_user_token, time_machine, settings):
    admin, old_token = admin_user_token
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    out = StringIO()
    call_command("rotate_signing_keys", "acme", stdout=out, stderr=StringIO())
    new_kid = out.getvalue().strip().splitlines()[-1]
    assert new_kid != old_kid
    kids = [k["kid"] for k in client.get("/tenant/acme/.well-known/jwks.json").json()["keys"]]
    assert kids == [new_kid, old_kid]
    # The old token still works on the API and verifies from the JWKS.
    assert call(client, "get", v2("acme", "Settings"), token=old_token).status_code == HTTPStatus.OK
    verify_with_jwks(client, "acme", old_token, origin="http://localhost")
    # New tokens are signed with the new key.
    assert jwt.get_unverified_header(access_token(admin, AMR_OTP))["kid"] == new_kid
    # After the longest token lifetime the old key is gone from the JWKS and verifies nothing.
    time_machine.shift(timedelta(seconds=max(settings.REFRESH_TOKEN_SECONDS, settings.ACCESS_TOKEN_SECONDS) + 1))
    kids = [k["kid"] for k in client.get("/tenant/acme/.well-known/jwks.json").json()["keys"]]
    assert kids == [new_kid]
    assert_error(call(client, "get", v2("acme", "Settings"), token=old_token), 401, "invalid_token")
    # The next rotation deletes it.
    call_command("rotate_signing_keys", "acme", stdout=StringIO(), stderr=StringIO())
    assert not SigningKey.objects.filter(kid=old_kid).exists()


def test_rotate_command_refuses_an_unknown_tenant(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command("rotate_signing_keys", "ghost", stdout=StringIO(), stderr=StringIO())


def test_rotate_mfa_keys_re_encrypts_signing_keys(tenant, settings):
    settings.MFA_ENCRYPTION_KEYS = ["old-key"]
    key = signing_key_current(tenant_id="acme")
    pem = private_pem_of(key)
    settings.MFA_ENCRYPTION_KEYS = ["new-key", "old-key"]
    call_command("rotate_mfa_keys", stdout=StringIO(), stderr=StringIO())
    settings.MFA_ENCRYPTION_KEYS = ["new-key"]
    key.refresh_from_db()
    assert private_pem_of(key) == pem


@pytest.fixture
def admin_user_token(user_factory, time_machine):
    time_machine.move_to("2030-05-17 12:00:00Z", tick=False)
    admin = user_factory("root", is_admin=True)
    return admin, access_token(admin)


# --- ES256, the option ---------------------------------------------------------------------

def test_a_tenant_can_sign_with_es256_and_keeps_it_across_rotations(client, admin_user_token, time_machine, settings):
    admin, rs256_token = admin_user_token
    err = StringIO()
    call_command("rotate_signing_keys", "acme", "--algorithm", "ES256", stdout=StringIO(), stderr=err)
    assert "now signs with ES256" in err.getvalue()
    keys = client.get("/tenant/acme/.well-known/jwks.json").json()["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("EC", "ES256"), ("RSA", "RS256")]
    assert keys[0]["crv"] == "P-256" and "d" not in keys[0]
    discovery = client.get("/tenant/acme/.well-known/openid-configuration").json()
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    # New API tokens are ES256 and verify from the JWKS; the RS256 one signed before still works.
    es256_token = access_token(admin, AMR_OTP)
    assert jwt.get_unverified_header(es256_token)["alg"] == "ES256"
    assert verify_with_jwks(client, "acme", es256_token, origin="http://localhost")["sub"] == str(admin.pk)
    assert call(client, "get", v2("acme", "Settings"), token=es256_token).status_code == HTTPStatus.OK
    assert call(client, "get", v2("acme", "Settings"), token=rs256_token).status_code == HTTPStatus.OK
    # A token claiming another algorithm for the ES256 key is refused (only the key's own).
    header = jwt.get_unverified_header(es256_token)
    forged = jwt.encode({"sub": str(admin.pk), "iss": "http://localhost/tenant/acme", "iat": 1}, "k" * 32, algorithm="HS256", headers={"kid": header["kid"]})
    assert_error(call(client, "get", v2("acme", "Settings"), token=forged), 401, "invalid_token")
    # A plain rotation keeps the tenant's choice; once the RS256 key's tokens expire, it is gone.
    time_machine.shift(timedelta(seconds=max(settings.REFRESH_TOKEN_SECONDS, settings.ACCESS_TOKEN_SECONDS) + 1))
    call_command("rotate_signing_keys", "acme", stdout=StringIO(), stderr=StringIO())
    assert {k.algorithm for k in SigningKey.objects.filter(tenant_id="acme")} == {"ES256"}
    assert client.get("/tenant/acme/.well-known/openid-configuration").json()["id_token_signing_alg_values_supported"] == ["ES256"]


def test_rotate_command_refuses_an_unknown_algorithm(tenant):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid choice"):
        call_command("rotate_signing_keys", "acme", "--algorithm", "HS256", stdout=StringIO(), stderr=StringIO())

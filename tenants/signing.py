"""A tenant's signing keys: the one home of how Gatehouse signs and verifies its JWTs.

Each tenant has its own asymmetric key pair, RS256 unless the tenant chose ES256 at a
rotation (``rotate_signing_keys TENANT_ID --algorithm ES256``); the private key is
encrypted at rest (``tenants.encryption``), the public key is published in the tenant's
JWKS. Every JWT of a tenant — the REST API's access and refresh tokens here,
the OpenID Connect ID tokens through ``oidc`` — is signed with the tenant's newest active
key, with ``kid`` (the key's RFC 7638 thumbprint) in the header and ``iss`` in the claims.

``signing_key_rotate`` adds a new key and retires the others: a retired key still
verifies, and stays in the JWKS, for the longest lifetime a token it signed can have
(``token_lifetime_max``); after that it is deleted by the next rotation and no longer
published or accepted.

A tenant that has no key yet (one created before this existed) gets one the first time
it signs. Two processes doing that at once make two active keys: both are published and
both verify, so nothing breaks; the newest signs.
"""
import json
import secrets
from datetime import timedelta
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from jwcrypto import jwk

from tenants import encryption
from tenants.models import SigningKey, Tenant

_PURPOSE = b"gatehouse-signing-key"
# A new tenant's first key, and a rotation's when the tenant has no key yet.
DEFAULT_ALGORITHM = SigningKey.Algorithm.RS256
# A JWT longer than this is refused before it is parsed.
MAX_TOKEN_LENGTH = 8192


class InvalidJWT(Exception):
    """A token that is not a JWT of this tenant: malformed, unknown key, bad signature,
    expired, of another type or of another tenant."""


# --- pure: keys ----------------------------------------------------------------------------

def private_key_generate(algorithm: str) -> str:
    """A new private key as unencrypted PKCS#8 PEM."""
    if algorithm == SigningKey.Algorithm.RS256:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == SigningKey.Algorithm.ES256:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"Unsupported signing algorithm: {algorithm}")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def jwk_private(private_pem: str) -> jwk.JWK:
    """The private key as a jwcrypto JWK (what django-oauth-toolkit signs ID tokens with)."""
    return _jwk_private(private_pem)


@lru_cache(maxsize=256)
def _jwk_private(private_pem: str) -> jwk.JWK:
    return jwk.JWK.from_pem(private_pem.encode("ascii"))


def public_jwk_of(private_pem: str, *, algorithm: str) -> tuple[str, dict]:
    """``(kid, public JWK)``: the kid is the RFC 7638 thumbprint (SHA-256), as
    django-oauth-toolkit puts it in ID tokens' headers."""
    key = jwk_private(private_pem)
    kid = key.thumbprint()
    public = json.loads(key.export_public())
    public.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return kid, public


# --- keys of a tenant ----------------------------------------------------------------------

def token_lifetime_max() -> timedelta:
    """The longest a JWT signed by a tenant's key can live: a retired key is published and
    accepted this long after its retirement."""
    return timedelta(
        seconds=max(settings.ACCESS_TOKEN_SECONDS, settings.REFRESH_TOKEN_SECONDS, settings.OIDC_ID_TOKEN_SECONDS)
    )


def signing_key_create(*, tenant: Tenant, algorithm: str = DEFAULT_ALGORITHM) -> SigningKey:
    """A new active key for ``tenant`` (the others stay as they are)."""
    private_pem = private_key_generate(algorithm)
    kid, public = public_jwk_of(private_pem, algorithm=algorithm)
    return SigningKey.objects.create(
        tenant=tenant,
        kid=kid,
        algorithm=algorithm,
        public_jwk=public,
        private_key_encrypted=encryption.encrypt(private_pem, purpose=_PURPOSE),
        created_at=timezone.now(),
    )


def signing_key_rotate(*, tenant: Tenant, algorithm: str | None = None) -> SigningKey:
    """Add a new key that signs from now on; retire the active ones (they keep verifying
    for ``token_lifetime_max``) and delete the retired keys whose tokens have all expired.
    The new key has ``algorithm``, or, when none is given, the algorithm the tenant signs
    with now: the tenant's choice lasts until a rotation changes it."""
    now = timezone.now()
    with transaction.atomic():
        list(Tenant.objects.select_for_update().filter(pk=tenant.pk))  # one rotation of a tenant at a time
        if algorithm is None:
            current = _signing_key_newest_active(tenant_id=tenant.pk)
            algorithm = current.algorithm if current is not None else DEFAULT_ALGORITHM
        SigningKey.objects.filter(tenant=tenant, retired_at__lte=now - token_lifetime_max()).delete()
        SigningKey.objects.filter(tenant=tenant, retired_at__isnull=True).update(retired_at=now)
        return signing_key_create(tenant=tenant, algorithm=algorithm)


def signing_keys_published(*, tenant_id: str, now=None):
    """The keys whose tokens may still be alive: active ones and those retired less than
    ``token_lifetime_max`` ago, newest first. The JWKS and verification use exactly these."""
    now = now or timezone.now()
    return SigningKey.objects.filter(
        Q(retired_at__isnull=True) | Q(retired_at__gt=now - token_lifetime_max()), tenant_id=tenant_id
    ).order_by("-created_at", "-pk")


def _signing_key_newest_active(*, tenant_id: str) -> SigningKey | None:
    return SigningKey.objects.filter(tenant_id=tenant_id, retired_at__isnull=True).order_by("-created_at", "-pk").first()


def signing_key_current(*, tenant_id: str) -> SigningKey:
    """The key that signs the tenant's tokens now (made on first use)."""
    key = _signing_key_newest_active(tenant_id=tenant_id)
    if key is None:
        key = signing_key_create(tenant=Tenant.objects.get(pk=tenant_id))
    return key


def private_pem_of(key: SigningKey) -> str:
    return encryption.decrypt(key.private_key_encrypted, purpose=_PURPOSE)


@lru_cache(maxsize=256)
def _private_key(encrypted: str):
    """The loaded private key (decrypting and parsing a PEM on every token would cost more
    than signing it). Keyed by the ciphertext, so a re-encrypted key is loaded afresh."""
    pem = encryption.decrypt(encrypted, purpose=_PURPOSE)
    return serialization.load_pem_private_key(pem.encode("ascii"), password=None)


def private_key_reencrypt(key: SigningKey) -> str:
    """The key's private part under the newest ``MFA_ENCRYPTION_KEYS`` key."""
    return encryption.reencrypt(key.private_key_encrypted, purpose=_PURPOSE)


def signing_algorithms_published(*, tenant_id: str) -> list[str]:
    """The algorithms the tenant's tokens may be signed with now: those of its published keys,
    the current key's first (``DEFAULT_ALGORITHM`` for a tenant that has no key yet: its first will be one)."""
    algorithms = [key.algorithm for key in signing_keys_published(tenant_id=tenant_id)]
    return list(dict.fromkeys(algorithms)) or [DEFAULT_ALGORITHM]


def jwks(*, tenant_id: str) -> dict:
    """The tenant's JSON Web Key Set (RFC 7517 §5)."""
    return {"keys": [dict(key.public_jwk) for key in signing_keys_published(tenant_id=tenant_id)]}


# --- JWTs ----------------------------------------------------------------------------------

def issuer_url(*, origin: str, tenant_id: str) -> str:
    """``SCHEME://HOST/tenant/ID``: the tenant's issuer as seen from ``origin``."""
    return f"{origin.rstrip('/')}/tenant/{tenant_id}"


def jwt_sign(*, tenant_id: str, claims: dict, typ: str = "JWT") -> str:
    """``claims`` signed with the tenant's current key, ``kid`` and ``typ`` in the header."""
    key = signing_key_current(tenant_id=tenant_id)
    return jwt.encode(
        claims, _private_key(key.private_key_encrypted), algorithm=key.algorithm, headers={"kid": key.kid, "typ": typ}
    )


def jwt_signed_claims(token, *, tenant_id: str, verify_exp: bool = True) -> dict:
    """The claims of a JWT signed with one of the tenant's published keys, or ``InvalidJWT``.

    The key is the one the header's ``kid`` names, and only its algorithm is accepted (no
    ``alg: none``, no HMAC with a public key). ``iat`` and ``iss`` are required, ``exp`` too
    unless ``verify_exp`` is off (an expired ID token as a logout hint); ``iss`` must be
    this tenant's issuer path (any host this server answers to: ``ALLOWED_HOSTS`` decides)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidJWT()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidJWT() from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidJWT()
    key = signing_keys_published(tenant_id=tenant_id).filter(kid=kid).first()
    if key is None:
        raise InvalidJWT()
    try:
        claims = jwt.decode(
            token,
            jwt.PyJWK(key.public_jwk).key,
            algorithms=[key.algorithm],
            options={"require": ["iat", "iss", *(["exp"] if verify_exp else [])], "verify_exp": verify_exp, "verify_aud": False},
        )
    except jwt.PyJWTError:
        raise InvalidJWT() from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer.endswith(f"/tenant/{tenant_id}"):
        raise InvalidJWT()
    return claims


def jwt_verify(token, *, tenant_id: str, token_type: str) -> dict:
    """The claims of one of the REST API's JWTs of this tenant and ``token_type``, or
    ``InvalidJWT``: ``jwt_signed_claims``, and ``exp``, ``jti``, ``sub`` present, ``tid``
    this tenant, ``token_type`` as asked."""
    claims = jwt_signed_claims(token, tenant_id=tenant_id)
    if (
        claims.get("tid") != tenant_id
        or claims.get("token_type") != token_type
        or not claims.get("jti")
        or not claims.get("sub")
    ):
        raise InvalidJWT()
    return claims


def jti_new() -> str:
    return secrets.token_hex(16)

"""Secrets at rest: Fernet under keys derived from ``MFA_ENCRYPTION_KEYS``.

``MFA_ENCRYPTION_KEYS`` (newest first) are any strings; each becomes a Fernet key through
HKDF-SHA256 with a ``purpose`` as HKDF's info, so a TOTP secret and a tenant's private
signing key are never under the same key. Without them a key is derived from
``SECRET_KEY``. MultiFernet encrypts with the newest and decrypts with any, so keys rotate
(``manage.py rotate_mfa_keys`` re-encrypts both kinds of secret).

It lives in ``tenants`` (the bottom of the dependency order) because a tenant's signing
keys (``tenants.signing``) and the MFA secrets (``mfa.crypto``) both use it.
"""
import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet_key(material: str, purpose: bytes) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material.encode())
    return base64.urlsafe_b64encode(key)


def _multifernet(purpose: bytes) -> MultiFernet:
    # Settings are read on every call (tests and rotations change them); the HKDF derivations
    # are done once per key list, not on every use.
    return _multifernet_of(tuple(k for k in settings.MFA_ENCRYPTION_KEYS if k) or (settings.SECRET_KEY,), purpose)


@lru_cache(maxsize=16)
def _multifernet_of(materials: tuple[str, ...], purpose: bytes) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(m, purpose)) for m in materials])


def encrypt(plaintext: str, *, purpose: bytes) -> str:
    return _multifernet(purpose).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, *, purpose: bytes) -> str:
    """Raises ``InvalidToken`` when no configured key opens it."""
    return _multifernet(purpose).decrypt(token.encode("ascii")).decode()


def reencrypt(token: str, *, purpose: bytes) -> str:
    """The same secret under the newest key."""
    return _multifernet(purpose).rotate(token.encode("ascii")).decode("ascii")


__all__ = ["InvalidToken", "encrypt", "decrypt", "reencrypt"]

"""Secrets at rest: TOTP secrets encrypted, one-time codes hashed.

``MFA_ENCRYPTION_KEYS`` (newest first) are any strings; each becomes a Fernet key through
HKDF-SHA256. Without them a key is derived from ``SECRET_KEY``. MultiFernet encrypts with
the newest and decrypts with any, so keys rotate with ``manage.py rotate_mfa_keys``.
"""
import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils.crypto import salted_hmac


def _fernet_key(material: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse-mfa-secret").derive(
        material.encode()
    )
    return base64.urlsafe_b64encode(key)


def _multifernet() -> MultiFernet:
    # Settings are read on every call (tests and rotations change them); the HKDF derivations
    # are done once per key list, not on every app code checked.
    return _multifernet_of(tuple(k for k in settings.MFA_ENCRYPTION_KEYS if k) or (settings.SECRET_KEY,))


@lru_cache(maxsize=8)
def _multifernet_of(materials: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(m)) for m in materials])


def encrypt(plaintext: str) -> str:
    return _multifernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """Raises ``InvalidToken`` when no configured key opens it."""
    return _multifernet().decrypt(token.encode("ascii")).decode()


def reencrypt(token: str) -> str:
    """The same secret under the newest key."""
    return _multifernet().rotate(token.encode("ascii")).decode("ascii")


def keyed_hash(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 under a key derived from SECRET_KEY: for short codes that live minutes."""
    return salted_hmac(f"gatehouse.{purpose}", value, algorithm="sha256").hexdigest()


def salted_hash(value: str, *, salt: str | None = None) -> str:
    """``salt$sha256(salt|value)``: for high-entropy codes (recovery codes, ≥ 60 bits)."""
    salt = salt or secrets.token_hex(16)
    return f"{salt}${hashlib.sha256(f'{salt}|{value}'.encode()).hexdigest()}"


def salted_hash_matches(value: str, stored: str) -> bool:
    salt, _, _digest = stored.partition("$")
    return hmac.compare_digest(salted_hash(value, salt=salt).encode(), stored.encode())


__all__ = ["InvalidToken", "encrypt", "decrypt", "reencrypt", "keyed_hash", "salted_hash", "salted_hash_matches"]

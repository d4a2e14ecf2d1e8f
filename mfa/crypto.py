"""Secrets at rest: TOTP secrets encrypted, one-time codes hashed.

TOTP secrets are encrypted with ``tenants.encryption`` (Fernet under keys derived from
``MFA_ENCRYPTION_KEYS``, with this module's own purpose); keys rotate with
``manage.py rotate_mfa_keys``.
"""
import hashlib
import hmac
import secrets

from django.utils.crypto import salted_hmac

from tenants import encryption
from tenants.encryption import InvalidToken

_PURPOSE = b"gatehouse-mfa-secret"


def encrypt(plaintext: str) -> str:
    return encryption.encrypt(plaintext, purpose=_PURPOSE)


def decrypt(token: str) -> str:
    """Raises ``InvalidToken`` when no configured key opens it."""
    return encryption.decrypt(token, purpose=_PURPOSE)


def reencrypt(token: str) -> str:
    """The same secret under the newest key."""
    return encryption.reencrypt(token, purpose=_PURPOSE)


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

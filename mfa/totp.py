"""TOTP (RFC 6238) without the ORM: secrets, the otpauth URI, the QR code, matching a code.

Pure functions; time is an argument. Codes are compared with ``hmac.compare_digest`` and
every step in the window is computed, so the time taken does not depend on which matched.
"""
import hashlib
import hmac
import secrets
from base64 import b32encode
from urllib.parse import quote

import pyotp
import segno

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1


def generate_secret() -> str:
    """A new 160-bit random secret, base32 without padding (32 characters)."""
    return b32encode(secrets.token_bytes(20)).decode("ascii")


def otpauth_uri(*, secret: str, issuer: str, username: str) -> str:
    """The provisioning URI, field for field as the contract gives it."""
    i, u = quote(issuer, safe=""), quote(username, safe="")
    return f"otpauth://totp/{i}:{u}?secret={secret}&issuer={i}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}"


def qr_svg(uri: str, *, title: str) -> str:
    """The URI as an inline SVG QR code (segno), with a title for assistive technology."""
    qr = segno.make(uri, error="m")
    # A viewBox as well as the natural size, so CSS can scale the code instead of clipping it.
    svg = qr.svg_inline(scale=5, border=4, title=title, dark="#000", light="#fff", omitsize=True)
    width, height = qr.symbol_size(scale=5, border=4)
    return svg.replace("<svg ", f'<svg role="img" width="{width}" height="{height}" ', 1)


def format_secret(secret: str) -> str:
    """The key in groups of four, for typing by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def step_at(unix_time: float) -> int:
    return int(unix_time // PERIOD)


def code_at_step(secret: str, step: int, *, digits: int = DIGITS, digest=hashlib.sha1) -> str:
    """The HOTP value (RFC 4226) of ``step``: the TOTP code of that time step."""
    return pyotp.OTP(secret, digits=digits, digest=digest).generate_otp(step)


def match_step(secret: str, code: str, *, unix_time: float, drift: int = DRIFT_STEPS) -> int | None:
    """The time step within ±drift whose code equals ``code``, or None. Constant time."""
    now = step_at(unix_time)
    found = None
    for step in range(now - drift, now + drift + 1):
        if hmac.compare_digest(code_at_step(secret, step).encode(), code.encode()) and found is None:
            found = step
    return found


def normalize_code(raw: str) -> str | None:
    """Exactly six ASCII digits once spaces are removed, else None (a wrong code)."""
    code = "".join(raw.split(" ")) if isinstance(raw, str) else ""
    if len(code) == DIGITS and code.isascii() and code.isdigit():
        return code
    return None

"""Recovery codes without the ORM: 60 random bits each, ``xxxx-xxxx-xxxx``.

Crockford's base32 alphabet (no i, l, o, u), so 12 symbols carry exactly 60 bits, and
the letters people confuse with digits are read as those digits.
"""
import secrets

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LENGTH = 12
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})


def generate_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize(raw: str) -> str | None:
    """Lower-case, look-alikes mapped, without spaces or hyphens; None when it cannot be one."""
    if not isinstance(raw, str):
        return None
    code = "".join(ch for ch in raw.strip().lower() if ch not in " -").translate(_LOOKALIKES)
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code

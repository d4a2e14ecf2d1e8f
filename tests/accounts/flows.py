"""Helpers for driving the sign-in pages with Django's test client (imported by page tests)."""
import re
import struct
import time
import zlib
from html import unescape

from django.core import mail

from mfa import totp
from tests.conftest import FIXED_SECRET, PASSWORD


def login_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/login/"


def verify_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/mfa/verify/"


def setup_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/mfa/setup/"


def choose_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/mfa/choose/"


def account_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/account/"


def logout_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/logout/"


def password_step(client, tenant_id: str, username: str, password: str = PASSWORD, *, next_url: str | None = None):
    url = login_url(tenant_id) + (f"?next={next_url}" if next_url is not None else "")
    return client.post(url, {"username": username, "password": password})


def code_now(secret: str = FIXED_SECRET, *, offset: int = 0) -> str:
    """The app's code at the (possibly frozen) current time, ``offset`` steps away."""
    return totp.code_at_step(secret, totp.step_at(time.time()) + offset)


def form_error_codes(response, field: str = "__all__") -> list[str]:
    """The ValidationError codes of one field of the page's form (``__all__``: non-field errors)."""
    form = response.context["form"]
    return [e.code for e in form.errors.as_data().get(field, [])]


def form_error_params(response, field: str = "__all__") -> dict:
    form = response.context["form"]
    errors = form.errors.as_data().get(field, [])
    return dict(errors[0].params or {}) if errors else {}


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context and "messages" in response.context else []


def is_signed_in(client, user) -> bool:
    from django.contrib.auth import SESSION_KEY

    return client.session.get(SESSION_KEY) == str(user.pk)


def code_from_mail(message) -> str:
    """The six-digit code in an emailed code (Django's locmem message or an email.message)."""
    body = message.body if hasattr(message, "body") else message.get_body(("plain",)).get_content()
    found = re.search(r"^\s+(\d{6})\s*$", body, re.M)
    assert found, body
    return found.group(1)


def last_outbox_code() -> str:
    return code_from_mail(mail.outbox[-1])


def manual_key(response) -> str:
    """The key shown for typing by hand, spaces removed."""
    found = re.search(r'id="manual-key">(.*?)</code>', response.content.decode(), re.S)
    assert found, "no manual key on the page"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).replace(" ", "")


def recovery_codes_on_page(response) -> list[str]:
    return re.findall(r"<li><code>([0-9a-z-]+)</code></li>", response.content.decode())


def recovery_codes_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/mfa/recovery-codes/"


# --- reading the QR code back out of the page's SVG ------------------------------------------

def svg_of(response) -> str:
    found = re.search(r"<svg\b.*?</svg>", response.content.decode(), re.S)
    assert found, "no inline SVG on the page"
    return found.group(0)


def svg_title(svg: str) -> str:
    found = re.search(r"<title>(.*?)</title>", svg, re.S)
    return unescape(found.group(1)) if found else ""


def svg_dark_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules (row, column) drawn by segno's SVG path, relative to the symbol's corner.

    segno draws each row of dark modules as horizontal strokes ``M x y h n m dx dy h n …``
    centred on y + 0.5; we replay that path. The top-left finder pattern is always dark at
    its corner, so the smallest row and column found are the symbol's origin (any border).
    """
    path = re.search(r'<path[^>]*\bstroke="[^"]+"[^>]*\bd="([^"]+)"', svg) or re.search(
        r'<path[^>]*\bd="([^"]+)"[^>]*\bstroke=', svg
    )
    assert path, "no stroked path in the SVG"
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for cmd, args in re.findall(r"([MmHhVvZz])([^MmHhVvZz]*)", path.group(1)):
        nums = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if cmd == "M":
            x, y = nums[0], nums[1]
        elif cmd == "m":
            x, y = x + nums[0], y + nums[1]
        elif cmd == "h":
            for col in range(int(round(x)), int(round(x + nums[0]))):
                dark.add((int(y), col))
            x += nums[0]
        elif cmd == "H":
            for col in range(int(round(x)), int(round(nums[0]))):
                dark.add((int(y), col))
            x = nums[0]
        else:
            raise AssertionError(f"unexpected SVG path command {cmd!r}")
    top, left = min(r for r, _ in dark), min(c for _, c in dark)
    return {(r - top, c - left) for r, c in dark}


def qr_dark_modules(qr) -> set[tuple[int, int]]:
    return {(r, c) for r, row in enumerate(qr.matrix) for c, v in enumerate(row) if v}


def png_of_modules(dark: set[tuple[int, int]], *, scale: int = 4, border: int = 4) -> bytes:
    """A grayscale PNG of the modules (stdlib only), for a QR decoder such as zbarimg."""
    size = max(max(r for r, _ in dark), max(c for _, c in dark)) + 1
    width = (size + 2 * border) * scale
    rows = []
    for py in range(width):
        r = py // scale - border
        line = bytearray([0])  # filter type: none
        for px in range(width):
            c = px // scale - border
            line.append(0 if (r, c) in dark else 255)
        rows.append(bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, width, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")

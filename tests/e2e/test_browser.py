"""A real browser and a real authenticator: Chromium through the pages; the QR code decoded by
zbarimg, codes computed by oathtool (never by Gatehouse), emailed codes read off the SMTP server."""
import re
import subprocess
from http import HTTPStatus
import urllib.parse

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import PASSWORD, oathtool, unavailable

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def browser():
    import os

    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"needs Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("needs the playwright Python package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Page:
    """A browser tab that records every console message and CSP violation it sees."""

    def __init__(self, browser, base: str):
        self.context = browser.new_context(base_url=base, device_scale_factor=3)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def csp_errors(self) -> list[str]:
        found = [m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m]
        found += self.page.evaluate("window.__csp || []")
        return found

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, main_stack):
    tab = Page(browser, main_stack.server.url)
    yield tab
    tab.close()


def sign_in(page, tenant: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"/tenant/{tenant}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def decode_qr(page, tmp_path) -> str:
    """Screenshot the QR code (inline SVG) and decode it with zbarimg."""
    zbarimg = require_tool("zbarimg")
    shot = tmp_path / "qr.png"
    page.locator("figure.qr svg").screenshot(path=str(shot))
    out = subprocess.run([zbarimg, "--raw", "-q", str(shot)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"zbarimg could not decode the QR code: {out.stderr}"
    return out.stdout.strip()


def submit_code(page, code: str) -> None:
    page.fill("input[name=code]", code)
    page.click("form:not(.secondary) button[type=submit]")


def test_totp_sign_up_and_sign_in_with_a_real_authenticator(tab, main_stack, tmp_path, used_secrets):
    require_tool("oathtool")
    page = tab.page
    sign_in(page, "acme", "tina")
    page.wait_for_url("**/tenant/acme/mfa/setup/")

    uri = decode_qr(page, tmp_path)
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qs(parts.query)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert urllib.parse.unquote(parts.path) == "/Acme Corp:tina"
    assert query["issuer"] == ["Acme Corp"] and query["algorithm"] == ["SHA1"]
    assert query["digits"] == ["6"] and query["period"] == ["30"]
    secret = query["secret"][0]
    assert len(secret) == 32  # 160 bits, base32
    assert page.locator("#manual-key").inner_text().replace(" ", "") == secret
    used_secrets.add(secret, uri)

    # Now and the next step: the server allows one step of drift, so the second code is
    # good for the second sign-in even if the clock has not moved on yet.
    now_code, next_code = oathtool(secret, window=1)
    used_secrets.add(now_code, next_code)
    submit_code(page, "000000" if now_code != "000000" else "111111")
    page.locator(".errors[role=alert]").wait_for()  # a wrong code: refused, still here
    submit_code(page, now_code)
    page.wait_for_selector("ul.codes")
    recovery = [c.strip() for c in page.locator("ul.codes code").all_inner_texts()]
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert all(re.fullmatch(r"[a-z0-9]{4}(-[a-z0-9]{4}){2,}", c) for c in recovery), recovery
    used_secrets.add(*recovery)
    page.check("input[name=saved]")
    page.click("form.saved button[type=submit]")
    page.wait_for_url("**/tenant/acme/account/")
    assert "Authenticator app, set up" in page.content()

    page.click("main form button[type=submit]:has-text('Sign out')")
    page.wait_for_url("**/tenant/acme/login/")

    sign_in(page, "acme", "tina")
    page.wait_for_url("**/tenant/acme/mfa/verify/")
    submit_code(page, now_code)  # the step already used: a replay (RFC 6238 §5.2)
    page.locator(".errors[role=alert]").wait_for()
    assert "/mfa/verify/" in page.url
    submit_code(page, next_code)
    page.wait_for_url("**/tenant/acme/account/")

    # The account page is closed again after signing out.
    page.click("main form button[type=submit]:has-text('Sign out')")
    page.wait_for_url("**/tenant/acme/login/")
    page.goto("/tenant/acme/account/")
    assert "/tenant/acme/login/" in page.url
    assert tab.csp_errors() == []


def test_email_code_sign_in_reads_the_code_from_the_smtp_server(tab, main_stack, mailbox):
    page = tab.page
    before = len(mailbox.to("emma@example.com"))
    sign_in(page, "acme", "emma")
    page.wait_for_url("**/tenant/acme/mfa/verify/")
    assert "e***@example.com" in page.content()
    code = mailbox.code_for("emma@example.com", before + 1)
    message = mailbox.to("emma@example.com")[before]
    assert "sign-in code" in message["Subject"]
    assert "10 minutes" in message.get_body(("plain",)).get_content()
    submit_code(page, code)
    page.wait_for_url("**/tenant/acme/account/")
    assert "Codes sent to your email" in page.content()
    assert tab.csp_errors() == []


def test_pages_satisfy_their_content_security_policy(browser, main_stack, mailbox, tmp_path):
    """No CSP error in Chromium's console on the login, set-up (QR SVG), verify, account, admin
    and API docs pages: the policy is strict and the pages still work."""
    tab = Page(browser, main_stack.server.url)
    page = tab.page
    try:
        seen = {}
        page.goto("/admin/")  # not signed in: the admin's login sends us to Gatehouse's sign-in
        assert "/login/" in page.url and "/admin/login/" not in page.url
        seen["admin login redirect"] = tab.csp_errors()
        page.goto("/tenant/acme/login/")
        seen["login"] = tab.csp_errors()
        sign_in(page, "acme", "csp")
        page.wait_for_url("**/tenant/acme/mfa/setup/")
        page.wait_for_selector("figure.qr svg")
        seen["setup"] = tab.csp_errors()
        assert page.locator("figure.qr svg").bounding_box()["width"] > 100  # the stylesheet applied

        before = len(mailbox.to("emma@example.com"))
        page.goto("/tenant/acme/login/")
        sign_in(page, "acme", "emma")
        page.wait_for_url("**/tenant/acme/mfa/verify/")
        seen["verify"] = tab.csp_errors()
        submit_code(page, mailbox.code_for("emma@example.com", before + 1))
        page.wait_for_url("**/tenant/acme/account/")
        seen["account"] = tab.csp_errors()

        response = page.goto("/admin/")  # a signed-in user who is not staff: the no-access page
        assert response.status in (HTTPStatus.OK, HTTPStatus.FORBIDDEN)
        seen["admin login"] = tab.csp_errors()

        page.goto("/api/docs/")
        page.wait_for_selector(".swagger-ui .info", timeout=20_000)  # Swagger UI ran: its scripts were allowed
        seen["api docs"] = tab.csp_errors()
        assert all(errors == [] for errors in seen.values()), seen
    finally:
        tab.close()

"""The pages people meet, in Chromium at a desktop (1280×800) and a phone (390×844) width,
light and dark: recovery codes that survive a reload, the code page's other ways, Cancel and
lockout, set-up on the phone, clear messages, the languages; axe-core finds no violation on
any of them, and every ``aria-describedby`` id exists (issue 21). Screenshots are written
to a temporary folder (its path is printed) and what they show is asserted."""
import re
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import oathtool, secret_from_uri
from tests.e2e.test_browser import browser, sign_in, submit_code  # noqa: F401 (browser: the module-scoped fixture)

pytestmark = pytest.mark.e2e

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def shots():
    """A folder of its own under the temporary directory, kept after the run to look at."""
    folder = Path(tempfile.mkdtemp(prefix="gatehouse-page-shots-"))
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


class Tab:
    def __init__(self, browser, base: str, **context):
        self.context = browser.new_context(base_url=base, **{"viewport": WIDTHS["desktop"], **context})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, main_stack):
    tab = Tab(browser, main_stack.server.url)
    yield tab
    tab.close()


def described_by_missing(page) -> list[str]:
    """Every id named by an aria-describedby that the page does not have."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[aria-describedby]')].flatMap(el =>
             el.getAttribute('aria-describedby').split(/\\s+/).filter(id => id && !document.getElementById(id))
               .map(id => (el.id || el.name || el.tagName) + ' -> ' + id))"""
    )


def check_page(page, name: str, shots, axe) -> None:
    """At both widths, in light and dark: no horizontal overflow, key groups unbroken, every
    aria-describedby id present, no axe-core violation; screenshots of each."""
    for width_name, size in WIDTHS.items():
        page.set_viewport_size(size)
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            where = f"{name} at {width_name} ({scheme})"
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert scroll <= inner, f"{where}: horizontal overflow ({scroll} > {inner})"
            split = page.evaluate(
                "[...document.querySelectorAll('code.key .group, ul.codes code')].filter(g => g.getClientRects().length !== 1).length"
            )
            assert split == 0, f"{where}: a key group or a recovery code wraps inside itself"
            assert described_by_missing(page) == [], where
            results = axe.run(page)
            assert results.violations_count == 0, f"{where}: {results.generate_report()}"
            shot = shots / f"{name}-{width_name}-{scheme}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000
    page.set_viewport_size(WIDTHS["desktop"])
    page.emulate_media(color_scheme="light")


def set_up_app(page, used_secrets, shots=None, axe=None) -> tuple[str, str]:
    """From the set-up page: the secret from the 'Open in your authenticator app' link, the
    first code confirms it. Returns the secret and the next step's code (for one more sign-in)."""
    require_tool("oathtool")
    page.wait_for_url("**/mfa/setup/")
    uri = page.locator("a[href^='otpauth://']").get_attribute("href")
    secret = secret_from_uri(uri)
    used_secrets.add(secret, uri)
    assert page.locator("#manual-key").inner_text().replace(" ", "").replace("\n", "") == secret
    if shots is not None:
        check_page(page, "setup", shots, axe)
    now_code, next_code = oathtool(secret, window=1)
    used_secrets.add(now_code, next_code)
    submit_code(page, now_code)
    page.wait_for_url("**/mfa/recovery-codes/")
    return secret, next_code


def test_set_up_on_the_phone_and_recovery_codes_that_survive_a_reload(browser, main_stack, used_secrets, shots, axe):
    tab = Tab(browser, main_stack.server.url, viewport=WIDTHS["phone"], has_touch=True, is_mobile=True)
    page = tab.page
    try:
        tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=main_stack.server.url)
        sign_in(page, "acme", "rita")
        page.wait_for_url("**/mfa/setup/")
        # Set-up on the phone itself: a link that opens the app, and a copy button for the key.
        link = page.locator("a[href^='otpauth://']")
        assert link.is_visible()
        uri = link.get_attribute("href")
        parts = urllib.parse.urlsplit(uri)
        assert parts.netloc == "totp" and urllib.parse.unquote(parts.path) == "/Acme Corp:rita"
        copy_key = page.locator("button[data-copy-target=manual-key]")
        assert copy_key.is_visible()
        copy_key.click()
        assert page.evaluate("navigator.clipboard.readText()") == secret_from_uri(uri)
        # The key never breaks inside a group at 390 px (check_page asserts it for each group).
        groups = page.locator("code.key .group").all_inner_texts()
        assert len(groups) == 8 and all(len(g) == 4 for g in groups)
        secret, _next_code = set_up_app(page, used_secrets, shots, axe)

        codes = [c.strip() for c in page.locator("ul.codes code").all_inner_texts()]
        assert len(codes) == 10 and len(set(codes)) == 10
        used_secrets.add(*codes)
        check_page(page, "recovery-codes", shots, axe)
        # A reload (the old page was a POST's answer: a CSRF error) shows the same codes.
        page.reload()
        assert [c.strip() for c in page.locator("ul.codes code").all_inner_texts()] == codes
        assert "CSRF" not in page.content()
        # Download (.txt)
        with page.expect_download() as download_info:
            page.click("a[href='?download=txt']")
        text = open(download_info.value.path(), encoding="utf-8").read()
        assert all(code in text for code in codes) and "rita" in text
        # Copy
        page.click("button[data-copy-target=recovery-codes]")
        assert page.evaluate("navigator.clipboard.readText()").split() == codes
        # Print: the button is there; printed, only the codes show (no header, buttons or form).
        assert page.locator("button.print").is_visible()
        page.emulate_media(media="print")
        assert not page.locator("header.site").is_visible() and not page.locator("form.saved").is_visible()
        assert page.locator("ul.codes").is_visible()
        page.emulate_media(media="screen")
        # "I have saved them" is asked before going on.
        page.click("form.saved button[type=submit]")
        page.wait_for_url("**/mfa/recovery-codes/?unconfirmed=1")  # redirected: no POST answer in the history
        page.locator("#id_saved_error").wait_for()
        check_page(page, "recovery-codes-unconfirmed", shots, axe)
        page.check("input[name=saved]")
        page.click("form.saved button[type=submit]")
        page.wait_for_url("**/tenant/acme/account/")
        check_page(page, "account", shots, axe)
        # Then gone: Back or the address again shows the account page, not the codes.
        page.go_back()
        page.wait_for_url("**/tenant/acme/account/")
        assert not page.locator("ul.codes").count()
        # Back to the code page after signing in: a clear word, not "Please sign in first".
        page.goto("/tenant/acme/mfa/setup/")
        page.wait_for_url("**/tenant/acme/account/")
        assert "You are already signed in." in page.content() and "Please sign in first" not in page.content()
        page.goto("/tenant/acme/account/password/")  # the password self-service page (issue 18) too
        check_page(page, "password-change", shots, axe)
    finally:
        tab.close()


def test_the_code_page_has_other_ways_cancel_and_a_lockout_countdown(tab, main_stack, used_secrets, shots, axe):
    page = tab.page
    sign_in(page, "acme", "leo")
    set_up_app(page, used_secrets)
    page.check("input[name=saved]")
    page.click("form.saved button[type=submit]")
    page.wait_for_url("**/tenant/acme/account/")
    page.click("main form button[type=submit]:has-text('Sign out')")
    page.wait_for_url("**/tenant/acme/login/")

    sign_in(page, "acme", "leo")
    page.wait_for_url("**/mfa/verify/")
    assert page.locator("input[name=code]").get_attribute("inputmode") == "numeric"
    check_page(page, "verify-app", shots, axe)
    # "Use a recovery code": its own state and field, with a full keyboard.
    page.click("a[href='?use=recovery']")
    page.wait_for_url("**/mfa/verify/?use=recovery")
    assert page.locator("input[name=recovery_code]").get_attribute("inputmode") == "text"
    assert page.locator("input[name=code]").count() == 0
    check_page(page, "verify-recovery", shots, axe)
    page.click("a[href='?']")
    page.wait_for_url("**/mfa/verify/?")
    # "Try another way"
    page.click("a[href='?use=other']")
    assert page.locator("ul.ways a[href='?use=recovery']").is_visible()
    check_page(page, "verify-other-ways", shots, axe)
    # "Cancel": back to the sign-in page, the pending sign-in ended.
    page.click("button:has-text('Cancel')")
    page.wait_for_url("**/tenant/acme/login/")
    assert "Sign-in cancelled" in page.content()
    page.goto("/tenant/acme/mfa/verify/")
    page.wait_for_url("**/tenant/acme/login/")

    # A lockout (acme: 3 wrong codes) disables the form and counts the time down.
    sign_in(page, "acme", "leo")
    page.wait_for_url("**/mfa/verify/")
    for _ in range(3):
        with page.expect_navigation():
            submit_code(page, "000000")
    assert page.locator("input[name=code]").is_disabled() and page.locator("fieldset.bare button").is_disabled()
    before = page.locator(".countdown .wait").inner_text()
    assert re.fullmatch(r"(9|10) min \d+ s", before), before
    page.wait_for_function("(before) => document.querySelector('.countdown .wait').textContent !== before", arg=before, timeout=5000)
    check_page(page, "verify-locked", shots, axe)
    page.reload()  # without JavaScript the server says the same, with the time left now
    assert page.locator("input[name=code]").is_disabled() and "min" in page.locator(".countdown").inner_text()


def test_clear_messages_on_the_choose_page(tab, main_stack, shots, axe):
    page = tab.page
    sign_in(page, "initech", "ines")
    page.wait_for_url("**/mfa/choose/")
    check_page(page, "choose", shots, axe)
    page.click("form:not(.secondary) button[type=submit]")
    page.locator("#id_method_error").wait_for()
    assert "This field is required." not in page.content()
    assert "Choose how you want to confirm your sign-ins" in page.content()
    check_page(page, "choose-empty", shots, axe)


def test_sign_in_and_operator_pages_have_no_accessibility_violations(tab, main_stack, shots, axe):
    page = tab.page
    page.goto("/tenant/acme/login/")
    check_page(page, "login", shots, axe)
    page.click("button[type=submit]")
    page.locator(".errors").first.wait_for()
    check_page(page, "login-empty", shots, axe)
    page.goto("/login/")
    check_page(page, "operator-login", shots, axe)
    # The password self-service pages (issue 18) too.
    page.goto("/tenant/acme/password/forgot/")
    check_page(page, "password-forgot", shots, axe)
    page.click("form button[type=submit]")
    page.locator(".errors").first.wait_for()
    check_page(page, "password-forgot-empty", shots, axe)
    page.goto("/tenant/acme/password/reset/not-a-token/")
    check_page(page, "password-reset-invalid", shots, axe)


def test_the_email_code_page(tab, main_stack, mailbox, shots, axe):
    page = tab.page
    before = len(mailbox.to("ella@example.com"))
    sign_in(page, "acme", "ella")
    page.wait_for_url("**/mfa/verify/")
    mailbox.wait_for("ella@example.com", before + 1)
    check_page(page, "verify-email", shots, axe)


@pytest.mark.parametrize(("username", "locale", "words"), [
    ("lena", "de-DE", {"login": "Anmelden", "verify": "Code eingeben", "subject": "ist Ihr Anmeldecode für", "account": "Ihr Konto"}),
    ("pablo", "es-ES", {"login": "Iniciar sesión", "verify": "Introduzca su código", "subject": "es su código de inicio de sesión",
                        "account": "Su cuenta"}),
])
def test_signing_in_in_each_language(browser, main_stack, mailbox, shots, axe, username, locale, words):
    """The browser's language (Accept-Language) decides the pages' and the emailed code's."""
    tab = Tab(browser, main_stack.server.url, locale=locale)
    page = tab.page
    language = locale[:2]
    try:
        page.goto("/tenant/acme/login/")
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("h1").inner_text() == words["login"]
        check_page(page, f"login-{language}", shots, axe)
        before = len(mailbox.to(f"{username}@example.com"))
        sign_in(page, "acme", username)
        page.wait_for_url("**/mfa/verify/")
        assert page.locator("h1").inner_text() == words["verify"]
        message = mailbox.wait_for(f"{username}@example.com", before + 1)[before]
        assert words["subject"] in message["Subject"]
        submit_code(page, mailbox.code_for(f"{username}@example.com", before + 1))
        page.wait_for_url("**/tenant/acme/account/")
        assert page.locator("h1").inner_text() == words["account"]
        check_page(page, f"account-{language}", shots, axe)
    finally:
        tab.close()

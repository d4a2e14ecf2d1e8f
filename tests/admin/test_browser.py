"""Headless Chromium: a tenant admin signs in through the pages with an app code, opens the
admin and resets a user's MFA through the confirmation page."""
import os

import pytest
from django.db import connections

from accounts.models import AuditEvent, MfaMethod
from mfa import totp
from mfa.models import TOTPDevice
from tests.accounts.flows import code_now
from tests.conftest import FIXED_SECRET, PASSWORD, confirm_totp

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def unavailable(reason: str):
    if os.environ.get("GATEHOUSE_CI") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def page(live_server, monkeypatch):
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"needs Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("needs the playwright Python package")
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(base_url=live_server.url)
        yield context.new_page()
        context.close()
        browser.close()
        # ORM calls made while Playwright's loop ran used a connection of their own (asgiref
        # keys connections by context then): close it, or PostgreSQL keeps the test database busy.
        connections.close_all()


def path_of(page) -> str:
    from urllib.parse import urlsplit

    return urlsplit(page.url).path


def test_tenant_admin_resets_mfa_in_the_browser(page, user_factory, tenant):
    boss = user_factory("boss", is_admin=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(boss)
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    seen: list[str] = []

    page.goto("/admin/")
    assert path_of(page) == "/login/"
    page.fill("input[name=tenant]", "acme")
    page.click("button[type=submit]")
    assert path_of(page) == "/tenant/acme/login/"
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert path_of(page) == "/tenant/acme/mfa/verify/"

    # Password only: the admin stays shut.
    page.goto("/admin/accounts/user/")
    assert path_of(page) == "/login/"
    page.goto("/tenant/acme/mfa/verify/")
    page.fill("input[name=code]", code_now(FIXED_SECRET))
    page.click("button[type=submit]")
    assert path_of(page) == "/admin/"
    seen.append(page.content())

    page.set_viewport_size({"width": 1280, "height": 800})
    page.click("a[href='/admin/accounts/user/']")
    seen.append(page.content())
    # The users list fits at 1280 px beside its filters: no horizontal scroll (issue 21).
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("div.results").evaluate("div => div.scrollWidth <= div.clientWidth")
    assert page.locator(f"a[href='/admin/accounts/auditevent/?user__id__exact={tina.pk}']").is_visible()
    page.click("text=tina")
    assert path_of(page) == f"/admin/accounts/user/{tina.pk}/change/"
    seen.append(page.content())
    page.click("text=Reset MFA")
    assert path_of(page) == f"/admin/accounts/user/{tina.pk}/reset-mfa/"
    assert "new QR code" in page.content()
    seen.append(page.content())
    page.click("input[value='Yes, reset MFA']")
    assert path_of(page) == f"/admin/accounts/user/{tina.pk}/change/"
    message = page.inner_text("ul.messagelist")
    assert "MFA reset for tina" in message
    seen.append(page.content())

    assert not TOTPDevice.objects.filter(user=tina).exists()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.MFA_RESET)
    assert (event.user_id, event.actor_id, event.channel) == (tina.pk, boss.pk, "admin")
    for html in seen:
        assert FIXED_SECRET not in html and totp.format_secret(FIXED_SECRET) not in html

"""Passkeys in a real browser: Chromium with the DevTools protocol's virtual authenticator
(``WebAuthn.addVirtualAuthenticator`` through Playwright's CDP session) registers and signs
with real WebAuthn; Gatehouse sees nothing but what a browser sends. The pages are served
from ``localhost`` (a secure context over plain HTTP, and a valid relying party id)."""
import base64
import json
import uuid
from http import HTTPStatus

import httpx
import pytest

from tests.e2e.conftest import PASSWORD
from tests.e2e.test_browser import Page, browser, sign_in  # noqa: F401  (browser: the module's fixture)

pytestmark = pytest.mark.e2e


def localhost(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


class VirtualAuthenticators:
    def __init__(self, tab):
        self.cdp = tab.context.new_cdp_session(tab.page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})

    def add(self) -> str:
        options = {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True,
        }
        return self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]

    def remove(self, authenticator_id: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id})

    def credentials(self, authenticator_id: str) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


@pytest.fixture
def keys_tab(browser, main_stack):  # noqa: F811
    tab = Page(browser, localhost(main_stack.server.url))
    yield tab
    tab.close()


def passkey_names(page) -> list[str]:
    return [row.strip() for row in page.locator("table.passkeys tbody tr td:first-child").all_inner_texts()]


def sign_out(page) -> None:
    page.click("main form button[type=submit]:has-text('Sign out')")
    page.wait_for_url("**/tenant/keys/login/")


def admin_api(main_stack) -> httpx.Client:
    api = httpx.Client(base_url=f"{localhost(main_stack.server.url)}/tenant/keys/v2/", timeout=30)
    token = api.post("auth/login", json={"username": "kadmin", "password": PASSWORD}).json()["accessToken"]
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def test_passkeys_in_chromium_with_a_virtual_authenticator(keys_tab, main_stack):
    page = keys_tab.page
    authenticators = VirtualAuthenticators(keys_tab)
    laptop = authenticators.add()

    # Registration: the set-up page, a name (a default from the User-Agent), the browser's prompt.
    sign_in(page, "keys", "wendy")
    page.wait_for_url("**/tenant/keys/mfa/setup/")
    assert page.input_value("input[name=name]").startswith("Passkey on Chrom")
    page.fill("input[name=name]", "Laptop")
    page.click("button:has-text('Create passkey')")
    page.wait_for_selector("ul.codes")
    assert len(page.locator("ul.codes code").all_inner_texts()) == 10
    page.check("input[name=saved]")
    page.click("form.saved button[type=submit]")  # "I have saved these recovery codes" (issue 21)
    page.wait_for_url("**/tenant/keys/account/")
    assert passkey_names(page) == ["Laptop"]
    assert len(authenticators.credentials(laptop)) == 1
    sign_out(page)

    # Sign-in with the passkey: the code page starts the prompt by itself.
    sign_in(page, "keys", "wendy")
    page.wait_for_url("**/tenant/keys/account/")
    assert authenticators.credentials(laptop)[0]["signCount"] >= 1
    assert "never" not in page.locator("table.passkeys tbody").inner_text()

    # A second passkey, on another authenticator (the first is gone from this browser).
    authenticators.remove(laptop)
    authenticators.add()  # the phone
    page.click("a:has-text('Add a passkey')")
    page.wait_for_url("**/tenant/keys/account/passkeys/add/")
    page.fill("input[name=name]", "Phone")
    page.click("button:has-text('Create passkey')")
    page.wait_for_url("**/tenant/keys/account/")
    assert passkey_names(page) == ["Laptop", "Phone"]

    # Removal: the laptop's passkey goes; the last one cannot.
    page.click("button[aria-label='Remove Laptop']")
    page.wait_for_url("**/tenant/keys/account/")
    assert passkey_names(page) == ["Phone"]
    page.click("button[aria-label='Remove Phone']")
    page.wait_for_url("**/tenant/keys/account/")
    assert passkey_names(page) == ["Phone"] and "only passkey" in page.content()
    sign_out(page)
    sign_in(page, "keys", "wendy")
    page.wait_for_url("**/tenant/keys/account/")  # signed with the phone's passkey

    # resetTOTP clears the passkeys; the next sign-in sets one up again.
    api = admin_api(main_stack)
    uid = uuid.UUID(main_stack.db.user_id("keys", "wendy"))
    reset = api.patch(f"Users/{uid}", json={"resetTOTP": True})
    assert reset.status_code == HTTPStatus.OK and reset.json()["passkeyCount"] == 0, reset.text
    page.goto("/tenant/keys/account/")
    page.wait_for_url("**/tenant/keys/login/**")  # the reset ended the session
    sign_in(page, "keys", "wendy")
    page.wait_for_url("**/tenant/keys/mfa/setup/")
    page.click("button:has-text('Create passkey')")
    page.wait_for_selector("ul.codes")
    page.check("input[name=saved]")
    page.click("form.saved button[type=submit]")  # "I have saved these recovery codes" (issue 21)
    page.wait_for_url("**/tenant/keys/account/")
    assert len(passkey_names(page)) == 1
    assert api.get(f"Users/{uid}").json()["passkeyCount"] == 1
    assert keys_tab.csp_errors() == []


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_api_flow_driven_by_the_virtual_authenticator(keys_tab, main_stack):
    page = keys_tab.page
    authenticators = VirtualAuthenticators(keys_tab)
    authenticators.add()
    page.goto("/tenant/keys/login/")  # any page of this origin; the helper script is ours, from static/
    page.add_script_tag(url="/static/js/passkey.js")
    api = httpx.Client(base_url=f"{localhost(main_stack.server.url)}/tenant/keys/v2/", timeout=30)

    # Set-up through the API: creation options, the browser creates, verify answers tokens.
    challenge = api.post("auth/login", json={"username": "walt", "password": PASSWORD}).json()
    assert challenge["mfaMethod"] == "webauthn" and challenge["enrollmentRequired"] is True
    creation = api.post("auth/mfa/webauthn/options", json={"mfaToken": challenge["mfaToken"]})
    assert creation.status_code == HTTPStatus.OK and creation.json()["publicKey"]["rp"]["id"] == "localhost"
    credential = page.evaluate("options => window.gatehousePasskey.create(options)", creation.json())
    done = api.post("auth/mfa/verify", json={"mfaToken": challenge["mfaToken"], "credential": credential})
    assert done.status_code == HTTPStatus.OK, done.text
    assert len(done.json()["recoveryCodes"]) == 10

    # Sign-in through the API: request options, the browser signs, verify answers tokens.
    challenge = api.post("auth/login", json={"username": "walt", "password": PASSWORD}).json()
    assert challenge["enrollmentRequired"] is False
    request = api.post("auth/mfa/webauthn/options", json={"mfaToken": challenge["mfaToken"]}).json()
    assertion = page.evaluate("options => window.gatehousePasskey.get(options)", request)
    done = api.post("auth/mfa/verify", json={"mfaToken": challenge["mfaToken"], "credential": assertion})
    assert done.status_code == HTTPStatus.OK, done.text
    assert claims(done.json()["accessToken"])["amr"] == ["pwd", "hwk", "mfa"]

    # The same answer again, in a new sign-in: its challenge is spent.
    challenge = api.post("auth/login", json={"username": "walt", "password": PASSWORD}).json()
    replay = api.post("auth/mfa/verify", json={"mfaToken": challenge["mfaToken"], "credential": assertion})
    assert replay.status_code == HTTPStatus.UNAUTHORIZED and replay.json()["error"] == "invalid_code"


def test_a_remembered_browser_in_chromium(browser, main_stack, mailbox):  # noqa: F811
    admin = httpx.Client(base_url=f"{main_stack.server.url}/tenant/mem/v2/", timeout=30)
    token = admin.post("auth/login", json={"username": "madmin", "password": PASSWORD}).json()["accessToken"]
    changed = admin.patch("Settings", json={"rememberDeviceDays": 7}, headers={"Authorization": f"Bearer {token}"})
    assert changed.status_code == HTTPStatus.OK and changed.json()["rememberDeviceDays"] == 7
    tab = Page(browser, main_stack.server.url)
    page = tab.page
    try:
        before = len(mailbox.to("mel@example.com"))
        sign_in(page, "mem", "mel")
        page.wait_for_url("**/tenant/mem/mfa/verify/")
        page.fill("input[name=code]", mailbox.code_for("mel@example.com", before + 1))
        page.check("input[name=remember]")
        page.click("form:not(.secondary) button[type=submit]")
        page.wait_for_url("**/tenant/mem/account/")
        cookie = next(c for c in tab.context.cookies() if c["name"] == "gatehouse_remember")
        assert cookie["httpOnly"] and cookie["path"] == "/tenant/mem/" and cookie["sameSite"] == "Lax"
        page.click("main form button[type=submit]:has-text('Sign out')")
        page.wait_for_url("**/tenant/mem/login/")

        sign_in(page, "mem", "mel")  # the password only
        page.wait_for_url("**/tenant/mem/account/")
        page.click("button:has-text('Forget all browsers')")
        page.wait_for_url("**/tenant/mem/account/")
        page.click("main form button[type=submit]:has-text('Sign out')")
        page.wait_for_url("**/tenant/mem/login/")
        sign_in(page, "mem", "mel")
        page.wait_for_url("**/tenant/mem/mfa/verify/")  # asked again
        assert tab.csp_errors() == []
    finally:
        tab.close()

"""Password self-service from outside: Chromium through "Forgot password?", the mail on a real
SMTP server, the link, a new password and the sign-in with it and the second factor; a link
used twice; a link made before a password change; and the forgot answers compared for a
known and an unknown login (bytes and median time)."""
import re
import statistics
import time
from http import HTTPStatus

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Api, Browserless
from tests.e2e.test_browser import browser, submit_code, tab  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

NEW = "e2e-Brand-new-passphrase-31"
LINK_RE = re.compile(r"(https?://\S+/tenant/[a-z0-9-]+/password/reset/(\S+?)/)")
SAMPLES = 31


def reset_link(mailbox, address: str, count: int = 1) -> tuple[str, str]:
    """The link of the ``count``-th reset mail to ``address``, and its token."""
    end = time.monotonic() + 20
    while time.monotonic() < end:
        mails = [m for m in mailbox.to(address) if "set a new password" in str(m["Subject"])]
        if len(mails) >= count:
            message = mails[count - 1]
            found = LINK_RE.search(message.get_body(("plain",)).get_content())
            assert found, "no link in the reset mail"
            html = message.get_body(("html",)).get_content()
            assert found.group(1) in html and "did not ask" in html
            return found.group(1), found.group(2)
        time.sleep(0.05)
    raise AssertionError(f"no reset mail number {count} to {address}")


def test_forgot_mail_link_new_password_then_the_second_factor_in_chromium(tab, main_stack, mailbox, used_secrets):  # noqa: F811
    used_secrets.add(NEW)
    page = tab.page
    page.goto("/tenant/acme/login/")
    page.click("text=Forgot your password?")
    page.wait_for_url("**/tenant/acme/password/forgot/")
    page.fill("input[name=login]", "reed")
    page.click("button[type=submit]")
    assert "Check your email" in page.content()

    link, token = reset_link(mailbox, "reed@example.com")
    used_secrets.add(token, token.split("-", 1)[1])
    assert "127.0.0.1" in mailbox.to("reed@example.com")[-1].get_body(("plain",)).get_content()  # who asked
    page.goto(link)
    page.fill("input[name=new_password1]", NEW)
    page.fill("input[name=new_password2]", NEW)
    page.click("button[type=submit]")
    page.wait_for_url("**/tenant/acme/login/")
    assert "new password is set" in page.content()

    # The reset alone reaches no signed-in page.
    page.goto("/tenant/acme/account/")
    page.wait_for_url("**/tenant/acme/login/**")

    # The old password is gone; the new one leads to the second factor, then in.
    codes_before = len(mailbox.to("reed@example.com"))
    page.fill("input[name=username]", "reed")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    assert "incorrect" in page.content()
    page.fill("input[name=username]", "reed")
    page.fill("input[name=password]", NEW)
    page.click("button[type=submit]")
    page.wait_for_url("**/tenant/acme/mfa/verify/")
    code = mailbox.code_for("reed@example.com", 1)
    assert len(mailbox.to("reed@example.com")) > codes_before
    submit_code(page, code)
    page.wait_for_url("**/tenant/acme/account/")
    assert "Change your password" in page.content()

    # The link works once.
    page.goto(link)
    assert "This link does not work" in page.content()
    assert "Ask for a new link" in page.content()
    assert tab.csp_errors() == []


def test_a_link_made_before_a_password_change_fails_after_it(main_stack, mailbox, used_secrets):
    client = Browserless(main_stack.server.url)
    api = Api(main_stack.server.url, "acme", used_secrets)
    try:
        assert client.submit("/tenant/acme/password/forgot/", {"login": "rhea@example.com"}).status_code == HTTPStatus.OK
        link, token = reset_link(mailbox, "rhea@example.com")
        used_secrets.add(token, token.split("-", 1)[1])
        assert 'name="new_password1"' in client.http.get(link).text  # live now

        tokens = api.login("rhea")
        changed = api.http.post("Me/password", json={"currentPassword": PASSWORD, "newPassword": NEW},
                                headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        assert changed.status_code == HTTPStatus.NO_CONTENT, changed.text

        assert "This link does not work" in client.http.get(link).text
        refused = api.post("auth/password/reset", {"token": token, "newPassword": "e2e-Yet-another-pass-55"})
        assert (refused.status_code, refused.json()["error"]) == (HTTPStatus.BAD_REQUEST, "invalid_token")
        assert api.login("rhea", NEW)["tokenType"] == "Bearer"
    finally:
        client.close()
        api.close()


def _normalized(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def _alike(results: dict[str, dict]) -> None:
    assert len({b for r in results.values() for b in r["bodies"]}) == 1, "the answers differ"
    assert len({s for r in results.values() for s in r["statuses"]}) == 1
    medians = {k: statistics.median(r["times"]) for k, r in results.items()}
    for known, unknown in PAIRS:
        pair = medians[known], medians[unknown]
        assert max(pair) <= 1.5 * min(pair), medians


PAIRS = (("known", "unknown"), ("known email", "unknown email"))


def test_forgot_answers_a_known_and_an_unknown_login_alike(main_stack):
    """The page and the API: byte-identical answers (the page's CSRF token aside) and median
    times within 1.5×. Each known login is timed right beside its unknown twin, in an order
    that alternates, so that load from elsewhere on the machine falls on both alike."""
    client = Browserless(main_stack.server.url)
    api = httpx.Client(base_url=f"{main_stack.server.url}/tenant/enum/v2/", timeout=30)
    cases = {"known": "erin", "unknown": "nobody-at-all", "known email": "erin@example.com", "unknown email": "no@example.com"}
    pages = {k: {"bodies": set(), "statuses": set(), "times": []} for k in cases}
    calls = {k: {"bodies": set(), "statuses": set(), "times": []} for k in cases}

    def page(name: str) -> None:
        _, csrf = client.csrf("/tenant/enum/password/forgot/")
        start = time.perf_counter()
        response = client.http.post("/tenant/enum/password/forgot/", data={"login": cases[name], "csrfmiddlewaretoken": csrf})
        pages[name]["times"].append(time.perf_counter() - start)
        pages[name]["bodies"].add(_normalized(response.text))
        pages[name]["statuses"].add(response.status_code)

    def call(name: str) -> None:
        start = time.perf_counter()
        response = api.post("auth/password/forgot", json={"login": cases[name]})
        calls[name]["times"].append(time.perf_counter() - start)
        calls[name]["bodies"].add(response.content)
        calls[name]["statuses"].add(response.status_code)

    try:
        for round_ in range(SAMPLES):
            # The worker looks each request up in the background; a pause lets it finish, so its
            # writes (SQLite locks the whole file) do not land inside a measured request.
            time.sleep(0.3)
            for measure in (page, call):
                for pair in PAIRS:
                    for name in (pair if round_ % 2 else reversed(pair)):
                        measure(name)
    finally:
        client.close()
        api.close()
    assert calls["known"]["statuses"] == {HTTPStatus.ACCEPTED}
    _alike(pages)
    _alike(calls)

"""Headers and cookies from outside: CSRF on every form, framing, sniffing, referrer, CSP,
no-store, and the session/CSRF cookie flags with SECURE_COOKIES false and true."""
from http import HTTPStatus
from http.cookies import SimpleCookie

import httpx
import pytest

from tests.e2e.conftest import CSRF_RE, PASSWORD, Browserless

pytestmark = pytest.mark.e2e

PAGES = ["/tenant/acme/login/", "/login/", "/tenant/acme/account/", "/tenant/acme/mfa/verify/", "/admin/", "/api/docs/", "/api/schema/"]


def cookies_set(response: httpx.Response) -> dict[str, dict]:
    """Set-Cookie headers parsed: name → {attribute: value} (flags present map to True)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            attrs = {k.lower(): (v if v != "" else False) for k, v in morsel.items()}
            low = header.lower()
            attrs["secure"] = "; secure" in low
            attrs["httponly"] = "; httponly" in low
            found[name] = attrs
    return found


def assert_security_headers(response: httpx.Response) -> None:
    h = response.headers
    assert h.get("x-frame-options") == "DENY"
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("referrer-policy") == "same-origin"
    csp = h.get("content-security-policy", "")
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "form-action 'self'"):
        assert directive in csp, (directive, csp)
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_the_security_headers(main_stack, path):
    response = httpx.get(main_stack.server.url + path, follow_redirects=False)
    assert response.status_code < 500
    assert_security_headers(response)
    assert "no-store" in response.headers.get("cache-control", "")


def test_auth_pages_and_their_answers_are_never_cached(page_client):
    page, _ = page_client.csrf("/tenant/acme/login/")
    assert "no-store" in page.headers["cache-control"]
    answer = page_client.login("acme", "emma")  # → pending, mail sent on the verify page
    assert answer.status_code == HTTPStatus.FOUND
    assert "no-store" in answer.headers["cache-control"]
    verify = page_client.http.get("/tenant/acme/mfa/verify/")
    assert verify.status_code == HTTPStatus.OK and "no-store" in verify.headers["cache-control"]
    static = page_client.http.get("/static/css/gatehouse.css")  # hashed static files may be cached
    assert static.status_code == HTTPStatus.OK and "no-store" not in static.headers.get("cache-control", "")


def test_login_without_a_csrf_token_is_forbidden(page_client, main_stack):
    page_client.csrf("/tenant/acme/login/")  # the CSRF cookie is set; only the token is missing
    before = main_stack.db.scalar("SELECT failed_password_count FROM accounts_user WHERE username = 'nora'")
    response = page_client.http.post("/tenant/acme/login/", data={"username": "nora", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "sessionid" not in cookies_set(response)
    response = page_client.http.post("/tenant/acme/login/", data={"username": "nora", "password": "wrong", "csrfmiddlewaretoken": "x" * 64})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert main_stack.db.scalar("SELECT failed_password_count FROM accounts_user WHERE username = 'nora'") == before


def test_every_form_needs_its_csrf_token(main_stack, mailbox):
    """The operator form, the code forms (verify, resend, setup, choose), the account page's
    action and sign-out: without the token each is refused and changes nothing."""
    client = Browserless(main_stack.server.url)
    try:
        assert client.http.post("/login/", data={"tenant": "acme"}).status_code == HTTPStatus.FORBIDDEN

        sent = len(mailbox.to("csrf@example.com"))
        assert client.login("acme", "csrf").status_code == HTTPStatus.FOUND
        # Failed codes outlive a sign-in with the password (earlier tests may have left some).
        failed = main_stack.db.scalar("SELECT failed_code_count FROM accounts_user WHERE username = 'csrf'")
        client.csrf("/tenant/acme/mfa/verify/")  # sends the first code
        mails = len(mailbox.wait_for("csrf@example.com", sent + 1))
        for data in ({"code": "123456"}, {"action": "resend"}):
            assert client.http.post("/tenant/acme/mfa/verify/", data=data).status_code == HTTPStatus.FORBIDDEN
        assert len(mailbox.to("csrf@example.com")) == mails
        assert main_stack.db.scalar("SELECT failed_code_count FROM accounts_user WHERE username = 'csrf'") == failed
        code = mailbox.code_for("csrf@example.com", mails)
        assert client.submit("/tenant/acme/mfa/verify/", {"code": code}).status_code == HTTPStatus.FOUND

        for path, data in (("/tenant/acme/account/", {"action": "regenerate-recovery-codes"}), ("/tenant/acme/logout/", {})):
            assert client.http.post(path, data=data).status_code == HTTPStatus.FORBIDDEN
        assert client.http.get("/tenant/acme/account/").status_code == HTTPStatus.OK  # still signed in
    finally:
        client.close()

    chooser = Browserless(main_stack.server.url)
    try:
        assert chooser.login("initech", "ivan").headers["location"].endswith("/mfa/choose/")
        failed = main_stack.db.scalar("SELECT failed_code_count FROM accounts_user WHERE username = 'ivan'")
        chooser.csrf("/tenant/initech/mfa/choose/")
        assert chooser.http.post("/tenant/initech/mfa/choose/", data={"method": "totp"}).status_code == HTTPStatus.FORBIDDEN
        assert chooser.submit("/tenant/initech/mfa/choose/", {"method": "totp"}).headers["location"].endswith("/mfa/setup/")
        chooser.csrf("/tenant/initech/mfa/setup/")
        assert chooser.http.post("/tenant/initech/mfa/setup/", data={"code": "123456"}).status_code == HTTPStatus.FORBIDDEN
        assert main_stack.db.scalar("SELECT failed_code_count FROM accounts_user WHERE username = 'ivan'") == failed
    finally:
        chooser.close()


def test_cookie_flags_on_plain_http(page_client):
    page = page_client.http.get("/tenant/acme/login/")
    csrf = cookies_set(page)["csrftoken"]
    assert csrf["httponly"] and not csrf["secure"] and csrf["samesite"] == "Lax"
    answer = page_client.login("acme", "emma")
    session = cookies_set(answer)["sessionid"]
    assert session["httponly"] and not session["secure"] and session["samesite"] == "Lax"


def test_cookie_flags_with_secure_cookies(secure_server):
    """SECURE_COOKIES=true: both cookies Secure, HttpOnly, SameSite=Lax. (Secure cookies are
    not sent back over plain http by a client, so the test carries them by hand.)"""
    base = secure_server.url
    page = httpx.get(f"{base}/tenant/acme/login/")
    csrf = cookies_set(page)["csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    token = CSRF_RE.search(page.text).group(1)
    answer = httpx.post(
        f"{base}/tenant/acme/login/",
        data={"username": "gina-not-here", "password": "x", "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={page.cookies['csrftoken']}"},
    )
    assert answer.status_code == HTTPStatus.OK  # the form again, with its error
    answer = httpx.post(
        f"{base}/tenant/acme/login/",
        data={"username": "nora", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={page.cookies['csrftoken']}"},
    )
    assert answer.status_code == HTTPStatus.FOUND
    session = cookies_set(answer)["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"

"""An outside relying party signs people in with a tenant's OpenID Provider: the Flask app of
docs/examples/flask_app.py, built on Authlib's client (not on Gatehouse's code), served on
its own port, driven through Chromium. Discovery, authorize, Gatehouse's pages with a code
from oathtool (and, for a second tenant, an emailed code), the callback, the ID token
validated by Authlib against the tenant's JWKS, userinfo, refresh, logout."""
import json
import threading
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import free_port, require_tool
from tests.e2e.conftest import PASSWORD, Api, oathtool, seed, unavailable
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, browser, submit_code  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.e2e


class RelyingParty:
    """docs/examples/flask_app.py on a werkzeug server in a thread."""

    def __init__(self, *, issuer: str, client_id: str, client_secret: str, port: int):
        try:
            from werkzeug.serving import make_server

            from docs.examples.flask_app import create_app
        except ImportError as exc:
            unavailable(f"needs Flask and Authlib ({exc})")
        self.url = f"http://127.0.0.1:{port}"
        self.app = create_app(issuer=issuer, client_id=client_id, client_secret=client_secret)
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def oidc_tenants(main_stack):
    seed(main_stack.env, [
        ["create_tenant", "oidcapp", "--name", "OIDC App"],
        ["create_tenant", "oidcmail", "--name", "OIDC Mail", "--mfa-required"],
        # The second run's tenant signs with ES256, the option: Authlib validates those ID tokens too.
        ["rotate_signing_keys", "oidcmail", "--algorithm", "ES256"],
        ["create_user", "oidcapp", "olga", "--email", "olga@example.com", "--password", PASSWORD, "--mfa", "totp"],
        ["create_user", "oidcapp", "oadmin", "--email", "oadmin@example.com", "--password", PASSWORD, "--admin"],
        ["create_user", "oidcmail", "mia", "--email", "mia@example.com", "--password", PASSWORD, "--mfa", "email"],
        ["create_user", "oidcmail", "madmin", "--email", "madmin@example.com", "--password", PASSWORD, "--admin", "--mfa", "email"],
    ])
    return main_stack


def register_client(stack, used_secrets, mailbox, tenant: str, admin: str, rp_port: int) -> tuple[str, str]:
    """A confidential client registered through the Clients API by the tenant's admin."""
    api = Api(stack.server.url, tenant, used_secrets)
    try:
        answer = api.login(admin)
        if answer.get("mfaRequired"):
            before = len(mailbox.to(f"{admin}@example.com"))
            api.post("auth/mfa/email/send", {"mfaToken": answer["mfaToken"]})
            answer = api.post("auth/mfa/verify", {"mfaToken": answer["mfaToken"], "code": mailbox.code_for(f"{admin}@example.com", before + 1)}).json()
        created = api.post("Clients", {
            "name": "Photo Album", "clientType": "confidential",
            "redirectUris": [f"http://127.0.0.1:{rp_port}/callback"], "postLogoutRedirectUris": [f"http://127.0.0.1:{rp_port}/"],
        }, headers={"Authorization": f"Bearer {answer['accessToken']}"})
        assert created.status_code == HTTPStatus.CREATED, created.text
        body = created.json()
        used_secrets.add(body["clientSecret"])
        return body["clientId"], body["clientSecret"]
    finally:
        api.close()


def rp_json(page) -> dict:
    return json.loads(page.locator("body").inner_text())


def run_relying_party(browser, stack, used_secrets, mailbox, *, tenant: str, admin: str, username: str, second_factor):  # noqa: F811
    port = free_port()
    client_id, client_secret = register_client(stack, used_secrets, mailbox, tenant, admin, port)
    issuer = f"{stack.server.url}/tenant/{tenant}"
    rp = RelyingParty(issuer=issuer, client_id=client_id, client_secret=client_secret, port=port)
    context = browser.new_context()
    page = context.new_page()
    # The authorization codes the callback receives: test_leaks looks for them in the servers'
    # logs and the database dumps (the database holds only their keyed hashes).
    codes = []
    page.on("request", lambda request: codes.extend(
        parse_qs(urlsplit(request.url).query).get("code", []) if request.url.startswith(f"{rp.url}/callback") else []))
    try:
        page.goto(f"{rp.url}/login")
        page.wait_for_url(f"**/tenant/{tenant}/login/**")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        second_factor(page)
        # The consent page: the client's name and what it asks for.
        page.wait_for_url(f"**/tenant/{tenant}/oauth/authorize/**")
        assert "Photo Album" in page.content() and "See your email address" in page.content()
        page.click("button[name=allow]")
        page.wait_for_url(f"{rp.url}/")
        assert len(codes) == 1
        used_secrets.add(*codes)
        claims = rp_json(page)["user"]
        # Authlib validated the ID token against the JWKS (signature, iss, aud, exp, nonce).
        assert claims["iss"] == issuer and claims["aud"] == client_id
        assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:gatehouse:acr:mfa"
        assert isinstance(claims["auth_time"], int) and claims["nonce"]
        page.goto(f"{rp.url}/profile")
        profile = rp_json(page)
        assert profile["sub"] == claims["sub"] and profile["preferred_username"] == username
        page.goto(f"{rp.url}/refresh")
        assert rp_json(page) == {"refreshed": True}
        page.goto(f"{rp.url}/profile")
        assert rp_json(page)["sub"] == claims["sub"]  # the refreshed access token works
        page.goto(f"{rp.url}/logout")
        page.wait_for_url(f"**/tenant/{tenant}/oauth/logout/**")  # Gatehouse asks first
        assert "Photo Album" in page.content()
        page.click("button[name=allow]")
        page.wait_for_url(f"{rp.url}/")
        assert rp_json(page) == {"user": None}
        page.goto(f"{stack.server.url}/tenant/{tenant}/account/")
        assert f"/tenant/{tenant}/login/" in page.url  # signed out of Gatehouse too
    finally:
        context.close()
        rp.stop()


def test_authlib_relying_party_with_an_authenticator_app(browser, oidc_tenants, used_secrets, mailbox):  # noqa: F811
    require_tool("oathtool")
    codes = {}

    def totp(page):
        page.wait_for_url("**/tenant/oidcapp/mfa/setup/")
        secret = page.locator("#manual-key").inner_text().replace(" ", "")
        used_secrets.add(secret)
        codes["now"], codes["next"] = oathtool(secret, window=1)
        submit_code(page, codes["now"])
        page.wait_for_selector("ul.codes")
        used_secrets.add(*[c.strip() for c in page.locator("ul.codes code").all_inner_texts()])
        page.check("input[name=saved]")  # "I have saved these recovery codes" (issue 21)
        page.click("form.saved button[type=submit]")

    run_relying_party(browser, oidc_tenants, used_secrets, mailbox, tenant="oidcapp", admin="oadmin", username="olga", second_factor=totp)


def test_authlib_relying_party_for_a_tenant_requiring_email_codes(browser, oidc_tenants, used_secrets, mailbox):  # noqa: F811
    before = len(mailbox.to("mia@example.com"))

    def email(page):
        page.wait_for_url("**/tenant/oidcmail/mfa/verify/")
        submit_code(page, mailbox.code_for("mia@example.com", before + 1))

    run_relying_party(browser, oidc_tenants, used_secrets, mailbox, tenant="oidcmail", admin="madmin", username="mia", second_factor=email)
    # The ID token Authlib validated was signed by the tenant's current key: ES256.
    keys = httpx.get(f"{oidc_tenants.server.url}/tenant/oidcmail/.well-known/jwks.json").json()["keys"]
    assert (keys[0]["kty"], keys[0]["alg"]) == ("EC", "ES256")


def test_discovery_and_jwks_over_http(oidc_tenants):
    base = oidc_tenants.server.url
    config = httpx.get(f"{base}/tenant/oidcapp/.well-known/openid-configuration").json()
    assert config["issuer"] == f"{base}/tenant/oidcapp"
    keys = httpx.get(config["jwks_uri"]).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and "d" not in k for k in keys)
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    es256 = httpx.get(f"{base}/tenant/oidcmail/.well-known/openid-configuration").json()
    assert es256["id_token_signing_alg_values_supported"][0] == "ES256"

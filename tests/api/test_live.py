"""Against a live server: the product guide's own examples (Python httpx and JavaScript fetch),
schemathesis over the OpenAPI schema, and Swagger UI in headless Chromium with no internet."""
import asyncio
import os
import subprocess
import sys
import textwrap
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from accounts.models import AuditEvent, MfaMethod
from tests.api.helpers import code_now
from tests.conftest import FIXED_SECRET, PASSWORD, confirm_totp, require_tool

GUIDE_BASE_URL = "https://auth.agglestone.com"

# The product guide's examples, verbatim (indentation restored); only the base URL changes.
GUIDE_PYTHON = textwrap.dedent(
    '''
    # Reset user's MFA (admin operation)
    async def reset_user_mfa(user_id):
        tenant_id = "your-tenant-id"
        async with httpx.AsyncClient() as client:
            response = await client.put(
                f"https://auth.agglestone.com/tenant/{tenant_id}/v2/Users/{user_id}",
                headers={
                    "Authorization": f"Bearer {admin_token}",
                    "Content-Type": "application/json"
                },
                json={
                    "resetTOTP": True
                }
            )
            response.raise_for_status()
    '''
)

GUIDE_JAVASCRIPT = textwrap.dedent(
    """
    // Reset user's MFA (admin operation)
    async function resetUserMfa(userId) {
      const tenantId = 'your-tenant-id';
      const response = await fetch(
        `https://auth.agglestone.com/tenant/${tenantId}/v2/Users/${userId}`,
        {
          method: 'PUT',
          headers: {
            'Authorization': `Bearer ${adminToken}`,
            'Content-Type': 'application/json'
          },
          body: JSON.stringify({
            resetTOTP: true
          })
        }
      );
      if (!response.ok) {
        throw new Error(`HTTP error! status: ${response.status}`);
      }
    }
    """
)


@pytest.fixture
def guide_tenant(tenant_factory, user_factory):
    """The guide's tenant id is literally ``your-tenant-id``: a valid id, so the code runs unchanged."""
    tenant = tenant_factory("your-tenant-id", "Your Company")
    admin = user_factory("admin", tenant=tenant, is_admin=True, mfa_method=MfaMethod.TOTP)
    confirm_totp(admin)
    bob = user_factory("bob", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(bob)
    return tenant, admin, bob


def live_call(base: str, path: str, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{base}/tenant/your-tenant-id/v2/{path}", json=body, headers=headers, timeout=10, trust_env=False)


def admin_sign_in(base: str) -> str:
    """The admin's own sign-in through the API: password, then the app's code."""
    challenge = live_call(base, "auth/login", {"username": "admin", "password": PASSWORD}).json()
    assert challenge["mfaMethod"] == "totp" and challenge["enrollmentRequired"] is False
    response = live_call(base, "auth/mfa/verify", {"mfaToken": challenge["mfaToken"], "code": code_now()})
    assert response.status_code == HTTPStatus.OK, response.text
    return response.json()["accessToken"]


def assert_asked_to_set_up_again(base: str, old_secret: str) -> None:
    challenge = live_call(base, "auth/login", {"username": "bob", "password": PASSWORD}).json()
    assert (challenge["mfaMethod"], challenge["enrollmentRequired"]) == ("totp", True)
    setup = live_call(base, "auth/mfa/totp/setup", {"mfaToken": challenge["mfaToken"]})
    assert setup.status_code == HTTPStatus.OK
    assert setup.json()["secret"] != old_secret
    assert f"secret={setup.json()['secret']}" in setup.json()["otpauthUri"]


def test_guide_python_example_resets_mfa(live_server, guide_tenant, monkeypatch):
    _tenant, admin, bob = guide_tenant
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    before = live_call(live_server.url, "auth/login", {"username": "bob", "password": PASSWORD}).json()
    assert before["enrollmentRequired"] is False
    namespace = {"httpx": httpx, "admin_token": admin_sign_in(live_server.url)}
    exec(GUIDE_PYTHON.replace(GUIDE_BASE_URL, live_server.url), namespace)  # noqa: S102 - the guide's code
    asyncio.run(namespace["reset_user_mfa"](str(bob.pk)))
    assert_asked_to_set_up_again(live_server.url, FIXED_SECRET)
    assert AuditEvent.objects.get(user=bob, kind="mfa_reset").actor_id == admin.pk


def test_guide_javascript_example_resets_mfa(live_server, guide_tenant, tmp_path):
    node = require_tool("node")
    _tenant, admin, bob = guide_tenant
    script = tmp_path / "reset.mjs"
    script.write_text(
        "const adminToken = process.env.ADMIN_TOKEN;\n"
        + GUIDE_JAVASCRIPT.replace(GUIDE_BASE_URL, live_server.url)
        + "\nawait resetUserMfa(process.argv[2]);\nconsole.log('reset done');\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "ADMIN_TOKEN": admin_sign_in(live_server.url)}
    done = subprocess.run([node, str(script), str(bob.pk)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "reset done"
    assert_asked_to_set_up_again(live_server.url, FIXED_SECRET)
    assert AuditEvent.objects.get(user=bob, kind="mfa_reset").actor_id == admin.pk


def test_guide_javascript_example_throws_without_admin_rights(live_server, guide_tenant, tmp_path):
    node = require_tool("node")
    _tenant, _admin, bob = guide_tenant
    script = tmp_path / "reset.mjs"
    script.write_text(
        "const adminToken = 'not-a-token';\n" + GUIDE_JAVASCRIPT.replace(GUIDE_BASE_URL, live_server.url)
        + "\nawait resetUserMfa(process.argv[2]);\n"
    )
    done = subprocess.run([node, str(script), str(bob.pk)], env={"PATH": os.environ.get("PATH", "")},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "HTTP error! status: 401" in done.stderr


SCHEMATHESIS_CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


@pytest.mark.e2e
def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, tenant, admin_token, user_factory, tmp_path):
    bob = user_factory("bob", mfa_method=MfaMethod.TOTP)
    cli = Path(sys.executable).with_name("schemathesis")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        '"path.tenant_id" = "acme"\n'
        f'"path.user_id" = "{bob.pk}"\n'
    )
    done = subprocess.run(
        [
            str(cli), "--config-file", str(config), "run", f"{live_server.url}/api/schema/",
            "--checks", SCHEMATHESIS_CHECKS,
            "--phases", "examples,fuzzing",
            "--max-examples", "8",
            "--seed", "20300517",
            "--no-shrink",
            "--workers", "1",
            "--request-timeout", "10",
            "--header", f"Authorization: Bearer {admin_token}",
        ],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1", "NO_PROXY": "*"},
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    # It really ran, over every operation of the API (21, and the 6 of Clients).
    assert "27 selected / 27 total" in done.stdout, done.stdout[-3000:]
    assert "Tested: 27" in done.stdout, done.stdout[-3000:]


@pytest.mark.e2e
@pytest.mark.browser
def test_swagger_ui_renders_offline_in_chromium(live_server, db):
    require_tool("chromium")
    from playwright.sync_api import sync_playwright

    local = urlsplit(live_server.url).netloc
    blocked, failed, bad = [], [], []

    def route(route):
        host = urlsplit(route.request.url).netloc
        if host == local:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("response", lambda response: bad.append((response.status, response.url)) if response.status >= 400 else None)
            page.goto(f"{live_server.url}/api/docs/", wait_until="networkidle")
            page.wait_for_selector(".opblock", timeout=15_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()
    assert "Gatehouse API" in title
    assert any(p.endswith("/v2/auth/login") for p in paths)
    assert any(p.endswith("/v2/Users/{user_id}") for p in paths)
    assert len(paths) == 27  # 21, and the 6 operations of Clients
    assert any(p.endswith("/v2/auth/password/forgot") for p in paths)
    assert not [u for u in failed if urlsplit(u).netloc == local], failed
    assert not bad, bad
    assert not blocked, blocked  # nothing even tried to leave the machine

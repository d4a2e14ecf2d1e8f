"""No admin page shows a TOTP secret, a code hash, a password hash or a refresh token:
crawl every admin page each kind of admin can reach and look for all of them."""
import re
from html import unescape
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import pytest

from accounts.models import MfaMethod, User
from accounts.tokens import AMR_OTP, token_pair_issue
from mfa import totp
from mfa.models import EmailCode, RecoveryCode, TOTPDevice
from mfa.email_codes import email_code_send
from mfa.recovery_codes import recovery_codes_replace
from mfa.setup import totp_device_begin
from tests.accounts.flows import password_step
from tests.conftest import FIXED_SECRET, confirm_totp

MAX_PAGES = 400


def crawl(client, start: str = "/admin/") -> dict[str, str]:
    """Every admin page reachable by links from ``start`` (GET only; query strings one level deep)."""
    pages: dict[str, str] = {}
    queue = [start]
    while queue:
        url = queue.pop(0)
        if url in pages:
            continue
        assert len(pages) < MAX_PAGES, "the crawl did not end"
        response = client.get(url)
        if response.status_code == HTTPStatus.FOUND:
            pages[url] = ""
            if response.url.startswith("/admin/"):
                queue.append(response.url)
            continue
        assert response.status_code == HTTPStatus.OK, (url, response.status_code)
        html = response.content.decode()
        pages[url] = html
        for href in re.findall(r'href="([^"#]*)', html):
            target = urljoin(url, unescape(href))
            parts = urlsplit(target)
            if not parts.path.startswith("/admin/") or parts.netloc or "logout" in parts.path:
                continue
            if parts.query and urlsplit(url).query:
                continue  # filter combinations of filter combinations add nothing
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return pages


@pytest.fixture
def secrets_world(admin_a, admin_b, operator, user_factory, tenant, tenant_b, client):
    """Users of both tenants holding every kind of secret; returns the strings that must never show."""
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    recovery_codes_replace(user=tina)
    midway = user_factory("midway", mfa_method=MfaMethod.TOTP)
    midway_secret = totp_device_begin(user=midway)  # set-up started, not finished
    emma = user_factory("emma", mfa_method=MfaMethod.EMAIL)
    email_code_send(user=emma)
    bob = user_factory("bob", tenant=tenant_b, mfa_method=MfaMethod.TOTP)
    confirm_totp(bob)
    recovery_codes_replace(user=bob)
    tokens = [token_pair_issue(user=u, amr=AMR_OTP)["refreshToken"] for u in (tina, bob, admin_a)]
    password_step(client, "acme", "tina", "wrong-password")  # an audit event with a failure
    found = [FIXED_SECRET, totp.format_secret(FIXED_SECRET), midway_secret, totp.format_secret(midway_secret), *tokens]
    found += list(TOTPDevice.objects.values_list("secret_encrypted", flat=True))
    for stored in [*RecoveryCode.objects.values_list("code_hash", flat=True), *EmailCode.objects.values_list("code_hash", flat=True)]:
        found += [stored, stored.rsplit("$", 1)[-1]]
    for password in User.objects.values_list("password", flat=True):
        found += [password, password.rsplit("$", 1)[-1]]
    return {"strings": [s for s in found if s], "users": [tina, midway, emma, bob]}


def assert_clean(pages: dict[str, str], strings: list[str]) -> None:
    for url, html in pages.items():
        lowered = html.lower()
        for secret in strings:
            assert secret.lower() not in lowered, f"a secret shows on {url}"


@pytest.mark.parametrize("who", ["client_a", "client_ops"])
def test_no_admin_page_shows_a_secret(who, request, secrets_world):
    client = request.getfixturevalue(who)
    pages = crawl(client)
    user_pages = [u for u in pages if re.match(r"^/admin/accounts/user/[0-9a-f-]{36}/change/$", u)]
    assert len(user_pages) >= (4 if who == "client_a" else 7)
    assert any(u.startswith("/admin/accounts/auditevent/") and u.endswith("/change/") for u in pages)
    # Pages reached by POST: the bulk confirmations.
    ids = [str(u.pk) for u in secrets_world["users"] if who == "client_ops" or u.tenant_id == "acme"]
    for action in ("reset_mfa_selected", "unlock_selected"):
        response = client.post("/admin/accounts/user/", {"action": action, "_selected_action": ids})
        assert response.status_code == HTTPStatus.OK
        pages[f"POST {action}"] = response.content.decode()
    assert_clean(pages, secrets_world["strings"])
    assert TOTPDevice.objects.count() == 6  # crawling changed nothing


def test_mfa_and_token_models_are_not_in_the_admin(client_ops):
    from django.contrib import admin
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    for model in (TOTPDevice, EmailCode, RecoveryCode, OutstandingToken, BlacklistedToken):
        assert not admin.site.is_registered(model), model
    assert client_ops.get("/admin/token_blacklist/outstandingtoken/").status_code == HTTPStatus.NOT_FOUND


def test_the_scan_catches_a_secret_in_any_case():
    with pytest.raises(AssertionError):
        assert_clean({"/admin/x/": f"<p>{totp.format_secret(FIXED_SECRET).lower()}</p>"}, [totp.format_secret(FIXED_SECRET)])

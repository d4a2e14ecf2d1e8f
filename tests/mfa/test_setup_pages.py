"""Setting up an authenticator app through the pages, and signing in with it (test client, frozen time).

How the QR code is checked: the test reads the key the page shows for typing by hand, builds
the contract's otpauth URI from it, and then reads the QR *back out of the page's SVG*:
segno draws each module row as a stroke in one <path>; we replay that path into the grid of
dark modules and require it to be exactly the grid of a QR code (error level M) holding the
contract URI. A QR grid determines its content, so an equal grid means the SVG holds that URI,
whatever attributes or styling the SVG gains. When zbarimg is on PATH a second test renders
the grid read from the SVG to a PNG (stdlib zlib, no new dependency) and decodes it with a
real QR reader, comparing the text to the contract URI byte for byte.
"""
import subprocess
from datetime import datetime, timezone as dt_timezone
from http import HTTPStatus

import pytest
import segno
from django.core import mail

from accounts.models import AuditEvent, MfaMethod
from mfa import crypto, totp
from mfa.models import RecoveryCode, TOTPDevice
from tests.accounts.flows import (
    account_url, code_now, form_error_codes, form_error_params, is_signed_in, logout_url, manual_key, page_messages,
    password_step, png_of_modules, qr_dark_modules, recovery_codes_on_page, recovery_codes_url, setup_url, svg_dark_modules,
    svg_of, svg_title,
    verify_url,
)
from tests.conftest import FIXED_SECRET, confirm_totp, freeze_at, require_tool, run_notices

NOW = datetime(2030, 6, 1, 8, 30, 5, tzinfo=dt_timezone.utc)


frozen = freeze_at(NOW)


@pytest.fixture
def newcomer(user_factory, tenant_factory):
    tenant = tenant_factory("acme-eu", "Acme & Co/EU")
    return user_factory("jo+test", tenant=tenant, mfa_method=MfaMethod.TOTP, email="jo@example.com")


def open_setup(client, user):
    response = password_step(client, user.tenant_id, user.username)
    assert response.status_code == HTTPStatus.FOUND and response.url == setup_url(user.tenant_id)
    page = client.get(setup_url(user.tenant_id))
    assert page.status_code == HTTPStatus.OK
    return page


def contract_uri(key: str) -> str:
    # Built by hand from the contract, not with mfa.totp, so a bug there cannot hide here.
    return (
        f"otpauth://totp/Acme%20%26%20Co%2FEU:jo%2Btest?secret={key}"
        "&issuer=Acme%20%26%20Co%2FEU&algorithm=SHA1&digits=6&period=30"
    )


def test_setup_page_shows_a_qr_holding_the_contract_uri(client, newcomer, frozen):
    page = open_setup(client, newcomer)
    key = manual_key(page)
    assert len(key) == 32
    svg = svg_of(page)
    assert svg_dark_modules(svg) == qr_dark_modules(segno.make(contract_uri(key), error="m"))
    title = svg_title(svg)
    assert "jo+test" in title and "Acme & Co/EU" in title


def test_the_qr_decodes_to_the_contract_uri_with_a_real_reader(client, newcomer, frozen, tmp_path):
    zbarimg = require_tool("zbarimg")
    page = open_setup(client, newcomer)
    png = tmp_path / "qr.png"
    png.write_bytes(png_of_modules(svg_dark_modules(svg_of(page))))
    out = subprocess.run([zbarimg, "--quiet", "--raw", str(png)], capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == contract_uri(manual_key(page))


def test_the_key_is_the_secret_stored_encrypted(client, newcomer, frozen):
    key = manual_key(open_setup(client, newcomer))
    device = TOTPDevice.objects.get(user=newcomer)
    assert device.confirmed_at is None
    assert key not in device.secret_encrypted
    assert crypto.decrypt(device.secret_encrypted) == key


def test_reloading_the_setup_page_keeps_the_same_key(client, newcomer, frozen):
    first = manual_key(open_setup(client, newcomer))
    assert manual_key(client.get(setup_url(newcomer.tenant_id))) == first


def test_setup_page_is_accessible_plain_html(client, newcomer, frozen):
    html = open_setup(client, newcomer).content.decode()
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    assert 'name="csrfmiddlewaretoken"' in html and "<title>" in html


def test_a_correct_code_confirms_the_app_and_shows_ten_recovery_codes_once(client, newcomer, frozen):
    key = manual_key(open_setup(client, newcomer))
    mail.outbox.clear()
    response = client.post(setup_url(newcomer.tenant_id), {"code": code_now(key)})
    assert response.status_code == HTTPStatus.FOUND and response.url == recovery_codes_url(newcomer.tenant_id)
    response = client.get(response.url)
    codes = recovery_codes_on_page(response)
    assert len(codes) == 10 == len(set(codes))
    assert is_signed_in(client, newcomer)
    assert TOTPDevice.objects.get(user=newcomer).confirmed_at is not None
    assert RecoveryCode.objects.filter(user=newcomer, used_at__isnull=True).count() == 10
    assert AuditEvent.objects.filter(user=newcomer, kind=AuditEvent.Kind.FACTOR_SETUP).count() == 1
    # The "factor set up" notice, with the tenant's name.
    run_notices()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["jo@example.com"]
    assert "Acme & Co/EU" in mail.outbox[0].subject  # plain text: not HTML-escaped
    assert "Acme & Co/EU" in mail.outbox[0].body and "Authenticator app" in mail.outbox[0].body
    # A reload shows them again (they wait in the session) until they are confirmed saved.
    assert recovery_codes_on_page(client.get(recovery_codes_url(newcomer.tenant_id))) == codes
    # Not confirmed: redirected back to them (no POST answer to reload), the reason on the box.
    response = client.post(recovery_codes_url(newcomer.tenant_id), {})
    assert response.url == recovery_codes_url(newcomer.tenant_id) + "?unconfirmed=1"
    response = client.get(response.url)
    assert form_error_codes(response, "saved") == ["required"] and recovery_codes_on_page(response) == codes
    assert 'aria-describedby="id_saved_error"' in response.content.decode()
    download = client.get(recovery_codes_url(newcomer.tenant_id) + "?download=txt")
    assert download["Content-Type"].startswith("text/plain") and "attachment" in download["Content-Disposition"]
    assert all(code in download.content.decode() for code in codes)
    response = client.post(recovery_codes_url(newcomer.tenant_id), {"saved": "on"})
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url(newcomer.tenant_id)
    # Then gone: neither this page nor the account page shows them again.
    response = client.get(recovery_codes_url(newcomer.tenant_id))
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url(newcomer.tenant_id)
    assert not recovery_codes_on_page(client.get(account_url(newcomer.tenant_id)))


def test_a_wrong_code_at_setup_is_refused_and_counted(client, newcomer, frozen):
    key = manual_key(open_setup(client, newcomer))
    wrong = code_now(key, offset=5)
    response = client.post(setup_url(newcomer.tenant_id), {"code": wrong})
    assert response.status_code == HTTPStatus.OK
    assert form_error_codes(response, "code") == ["invalid_code"]
    assert form_error_params(response, "code") == {"attempts_remaining": 4}
    assert not is_signed_in(client, newcomer)
    assert TOTPDevice.objects.get(user=newcomer).confirmed_at is None
    assert manual_key(response) == key  # the same key is shown again


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (1, True), (2, False)])
def test_drift_at_setup(client, newcomer, frozen, offset, accepted):
    key = manual_key(open_setup(client, newcomer))
    client.post(setup_url(newcomer.tenant_id), {"code": code_now(key, offset=offset)})
    assert is_signed_in(client, newcomer) is accepted


def test_after_setup_the_next_sign_in_asks_for_a_code(client, newcomer, frozen):
    key = manual_key(open_setup(client, newcomer))
    client.post(setup_url(newcomer.tenant_id), {"code": code_now(key)})
    client.post(logout_url(newcomer.tenant_id))
    frozen.shift(30)
    response = password_step(client, newcomer.tenant_id, newcomer.username)
    assert response.url == verify_url(newcomer.tenant_id)
    # The setup page is no longer reachable: it hands over to the code page.
    assert client.get(setup_url(newcomer.tenant_id)).url == verify_url(newcomer.tenant_id)
    client.post(verify_url(newcomer.tenant_id), {"code": code_now(key)})
    assert is_signed_in(client, newcomer)


# --- signing in with a set-up app ------------------------------------------------------------

def sign_in_with(client, user, code):
    password_step(client, user.tenant_id, user.username)
    return client.post(verify_url(user.tenant_id), {"code": code})


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_drift_through_the_code_page(client, totp_user, frozen, offset, accepted):
    response = sign_in_with(client, totp_user, code_now(offset=offset))
    assert is_signed_in(client, totp_user) is accepted
    if not accepted:
        assert form_error_codes(response, "code") == ["invalid_code"]


def test_the_same_step_twice_is_refused_through_the_pages(client, totp_user, frozen):
    code = code_now()
    sign_in_with(client, totp_user, code)
    assert is_signed_in(client, totp_user)
    client.post(logout_url(totp_user.tenant_id))
    frozen.shift(10)  # same 30-second step
    response = sign_in_with(client, totp_user, code)
    assert form_error_codes(response, "code") == ["code_already_used"]
    assert not is_signed_in(client, totp_user)
    assert AuditEvent.objects.filter(user=totp_user, kind=AuditEvent.Kind.REPLAY_REFUSED).count() == 1
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0
    frozen.shift(30)
    client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert is_signed_in(client, totp_user)


def test_a_recovery_code_in_the_code_field_signs_in_once(client, user_factory, frozen):
    user = user_factory("rachel", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    from mfa.recovery_codes import recovery_codes_replace

    codes = recovery_codes_replace(user=user)
    response = sign_in_with(client, user, codes[0].upper())
    assert response.status_code == HTTPStatus.FOUND and is_signed_in(client, user)
    assert client.session["gatehouse_amr"] == ["pwd", "mfa"]
    client.post(logout_url(user.tenant_id))
    response = sign_in_with(client, user, codes[0])
    assert form_error_codes(response, "code") == ["code_already_used"]
    assert not is_signed_in(client, user)


def test_signing_in_with_a_recovery_code_warns_it_is_spent(client, user_factory, frozen):
    user = user_factory("ronan", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    from mfa.recovery_codes import recovery_codes_replace

    codes = recovery_codes_replace(user=user)
    password_step(client, user.tenant_id, user.username)
    response = client.post(verify_url(user.tenant_id), {"code": codes[1]}, follow=True)
    assert any("recovery code" in m for m in page_messages(response))


def test_code_page_offers_recovery_code_entry_for_app_users(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, totp_user.username)
    html = client.get(verify_url(totp_user.tenant_id)).content.decode()
    # The app's code field keeps its numeric keypad; a recovery code has its own state and field.
    assert 'name="code"' in html and 'inputmode="numeric"' in html and 'inputmode="text"' not in html
    assert "?use=recovery" not in html  # none made yet: no link to a way that cannot work
    from mfa.recovery_codes import recovery_codes_replace
    codes = recovery_codes_replace(user=totp_user)
    html = client.get(verify_url(totp_user.tenant_id)).content.decode()
    assert 'href="?use=recovery"' in html and 'href="?use=other"' in html
    html = client.get(verify_url(totp_user.tenant_id) + "?use=recovery").content.decode()
    assert 'name="recovery_code"' in html and 'inputmode="text"' in html and 'name="code"' not in html
    response = client.post(verify_url(totp_user.tenant_id) + "?use=recovery", {"recovery_code": codes[0].upper()})
    assert response.status_code == HTTPStatus.FOUND and is_signed_in(client, totp_user)


def test_the_secret_stays_usable_after_setup_by_the_fixed_secret(client, totp_user, frozen):
    # Sanity of the fixtures the other page tests rely on.
    assert crypto.decrypt(TOTPDevice.objects.get(user=totp_user).secret_encrypted) == FIXED_SECRET
    assert totp.match_step(FIXED_SECRET, code_now(), unix_time=NOW.timestamp()) == totp.step_at(NOW.timestamp())


def test_code_lockout_through_the_page_shows_the_time_left_and_lifts(client, user_factory, tenant_factory, frozen):
    tenant = tenant_factory("codelock", "Code Lock", mfa_max_attempts=2, lockout_seconds=180)
    user = user_factory("cora", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    password_step(client, tenant.id, "cora")
    wrong = next(c for c in ("000000", "111111") if c not in {code_now(offset=d) for d in (-1, 0, 1)})
    assert form_error_codes(client.post(verify_url(tenant.id), {"code": wrong}), "code") == ["invalid_code"]
    assert form_error_codes(client.post(verify_url(tenant.id), {"code": wrong}), "code") == ["locked_out"]
    frozen.shift(60)
    response = client.post(verify_url(tenant.id), {"code": code_now()})  # the right code, while locked
    assert form_error_codes(response, "code") == ["locked_out"]
    assert form_error_params(response, "code") == {"retry_after": 120}
    assert "2 min" in response.content.decode()
    assert not is_signed_in(client, user)
    frozen.shift(121)  # the pending sign-in (10 minutes) is still alive
    client.post(verify_url(tenant.id), {"code": code_now()})
    assert is_signed_in(client, user)
    user.refresh_from_db()
    assert (user.failed_code_count, user.locked_until) == (0, None)


def test_after_set_up_the_recovery_codes_page_continues_to_a_safe_next(client, newcomer, frozen):
    password_step(client, newcomer.tenant_id, "jo+test", next_url="/admin/")
    key = manual_key(client.get(setup_url(newcomer.tenant_id)))
    client.post(setup_url(newcomer.tenant_id), {"code": code_now(key)})
    response = client.post(recovery_codes_url(newcomer.tenant_id), {"saved": "on"})
    assert response.url == "/admin/"

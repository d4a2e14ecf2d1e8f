"""No dead ends on the second-factor pages: a recovery code in its own state, the other ways,
Cancel, a lockout shown with its time left before any attempt, clear messages (issue 21)."""
import re
from datetime import datetime, timezone as dt_timezone
from http import HTTPStatus

import pytest

from accounts.errors import EmailUnavailable
from accounts.models import MfaMethod
from mfa.recovery_codes import recovery_codes_replace
from tests.accounts.flows import (
    account_url, code_now, form_error_codes, is_signed_in, login_url, page_messages, password_step, setup_url, verify_url,
)
from tests.conftest import confirm_totp, freeze_at, free_port

NOW = datetime(2030, 6, 1, 8, 30, 5, tzinfo=dt_timezone.utc)
frozen = freeze_at(NOW)


def cancel_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/mfa/cancel/"


def test_cancel_ends_the_pending_sign_in(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    assert f'action="{cancel_url(totp_user.tenant_id)}"' in client.get(verify_url(totp_user.tenant_id)).content.decode()
    response = client.post(cancel_url(totp_user.tenant_id), follow=True)
    assert response.redirect_chain[-1][0] == login_url(totp_user.tenant_id)
    assert "gatehouse_pending" not in client.session
    assert any("cancelled" in m for m in page_messages(response))
    # The code page is closed now: the right code does not sign in.
    response = client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert response.status_code == HTTPStatus.FOUND and response.url == login_url(totp_user.tenant_id)
    assert not is_signed_in(client, totp_user)


def test_cancel_is_on_the_set_up_and_choose_pages_too(client, user_factory, tenant_factory, frozen):
    newcomer = user_factory("newt", mfa_method=MfaMethod.TOTP)
    password_step(client, newcomer.tenant_id, "newt")
    assert cancel_url(newcomer.tenant_id) in client.get(setup_url(newcomer.tenant_id)).content.decode()
    strict = tenant_factory("strict", "Strict", mfa_required=True)
    user_factory("nora", tenant=strict)
    password_step(client, "strict", "nora")
    assert cancel_url("strict") in client.get("/tenant/strict/mfa/choose/").content.decode()


def test_cancel_is_post_only(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    assert client.get(cancel_url(totp_user.tenant_id)).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert "gatehouse_pending" in client.session


def test_try_another_way_lists_the_ways_the_user_has(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    html = client.get(verify_url(totp_user.tenant_id) + "?use=other").content.decode()
    assert "authenticator app" in html and "?use=recovery" not in html  # no recovery codes yet
    recovery_codes_replace(user=totp_user)
    html = client.get(verify_url(totp_user.tenant_id) + "?use=other").content.decode()
    assert 'href="?use=recovery"' in html and "administrator" in html


def test_a_wrong_recovery_code_counts_like_a_wrong_code(client, totp_user, frozen):
    recovery_codes_replace(user=totp_user)
    password_step(client, totp_user.tenant_id, "tina")
    response = client.post(verify_url(totp_user.tenant_id) + "?use=recovery", {"recovery_code": "aaaa-bbbb-cccc"})
    assert form_error_codes(response, "recovery_code") == ["invalid_code"]
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 1
    response = client.post(verify_url(totp_user.tenant_id) + "?use=recovery", {"recovery_code": ""})
    assert form_error_codes(response, "recovery_code") == ["required"]
    assert "Enter one of your recovery codes." in response.content.decode()


def test_a_locked_account_sees_the_form_disabled_with_the_time_left_before_trying(client, user_factory, tenant_factory, frozen):
    tenant = tenant_factory("lockshow", "Lock Show", mfa_max_attempts=1, lockout_seconds=300)
    user = user_factory("lou", tenant=tenant, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    password_step(client, tenant.id, "lou")
    wrong = next(c for c in ("000000", "111111") if c not in {code_now(offset=d) for d in (-1, 0, 1)})
    response = client.post(verify_url(tenant.id), {"code": wrong})
    assert form_error_codes(response, "code") == ["locked_out"]
    html = response.content.decode()
    assert re.search(r'<fieldset class="bare" disabled>', html)
    assert 'data-countdown="300"' in html and "5 min 0 s" in html
    # A reload, without JavaScript, answers the same with the time that is left now.
    frozen.shift(100)
    html = client.get(verify_url(tenant.id)).content.decode()
    assert "disabled" in html and 'data-countdown="200"' in html and "3 min 20 s" in html
    frozen.shift(201)
    html = client.get(verify_url(tenant.id)).content.decode()
    assert "data-countdown" not in html and "<fieldset class=\"bare\">" in html


def test_back_to_the_code_page_after_signing_in_says_so(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert is_signed_in(client, totp_user)
    response = client.get(verify_url(totp_user.tenant_id), follow=True)
    assert response.redirect_chain[-1][0] == account_url(totp_user.tenant_id)
    shown = page_messages(response)
    assert shown == ["You are already signed in."], shown


def test_the_empty_choose_page_says_what_to_do(client, user_factory, tenant_factory, frozen):
    strict = tenant_factory("strict", "Strict", mfa_required=True)
    user_factory("nora", tenant=strict)
    password_step(client, "strict", "nora")
    response = client.post("/tenant/strict/mfa/choose/", {})
    html = response.content.decode()
    assert "This field is required." not in html
    assert "Choose how you want to confirm your sign-ins" in html
    assert 'aria-describedby="id_method_error"' in html and 'id="id_method_error"' in html


def test_an_empty_code_says_what_to_do(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    html = client.post(verify_url(totp_user.tenant_id), {"code": ""}).content.decode()
    assert "This field is required." not in html and "Enter the six-digit code." in html


@pytest.mark.parametrize("how", ["refused", "down"])
def test_send_a_new_code_with_smtp_down_shows_the_error_once(client, email_user, smtp_server, settings, frozen, how):
    if how == "refused":
        smtp_server.fail = True
    else:
        settings.EMAIL_PORT = free_port()
    password_step(client, email_user.tenant_id, email_user.username)
    first = client.get(verify_url(email_user.tenant_id))
    assert page_messages(first) == [str(EmailUnavailable.message)]
    response = client.post(verify_url(email_user.tenant_id), {"action": "resend"}, follow=True)
    assert page_messages(response) == [str(EmailUnavailable.message)]  # once, not twice
    assert response.content.decode().count(str(EmailUnavailable.message)) == 1


def test_every_aria_describedby_id_exists_on_the_pages(client, totp_user, frozen):
    """Inputs point to their help and errors by ids that the page really has."""
    recovery_codes_replace(user=totp_user)
    pages = [client.get(login_url(totp_user.tenant_id)), client.post(login_url(totp_user.tenant_id), {"username": "", "password": ""})]
    password_step(client, totp_user.tenant_id, "tina")
    pages += [
        client.get(verify_url(totp_user.tenant_id)),
        client.post(verify_url(totp_user.tenant_id), {"code": "12"}),
        client.get(verify_url(totp_user.tenant_id) + "?use=recovery"),
        client.post(verify_url(totp_user.tenant_id) + "?use=recovery", {"recovery_code": "x"}),
    ]
    checked = 0
    for page in pages:
        html = page.content.decode()
        ids = set(re.findall(r'\bid="([^"]+)"', html))
        for described in re.findall(r'aria-describedby="([^"]+)"', html):
            for target in described.split():
                assert target in ids, (page.request["PATH_INFO"], target)
                checked += 1
    assert checked >= 4  # the errors and help texts above were really linked

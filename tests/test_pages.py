"""The sign-in pages as a whole: the pending state, sessions, ?next=, sign-out, the choose and account pages."""
from datetime import datetime, timezone as dt_timezone
from http import HTTPStatus

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail

from accounts.models import AuditEvent, MfaMethod
from accounts.services import user_set_password
from mfa.models import EmailCode, RecoveryCode, TOTPDevice
from tests.accounts.flows import (
    account_url, choose_url, code_from_mail, code_now, form_error_codes, is_signed_in, last_outbox_code, login_url,
    logout_url, manual_key, page_messages, password_step, recovery_codes_on_page, recovery_codes_url, setup_url, verify_url,
)
from tests.conftest import PASSWORD, confirm_totp, freeze_at, run_notices
from mfa.setup import mfa_reset

NOW = datetime(2030, 4, 4, 14, 0, 0, tzinfo=dt_timezone.utc)


frozen = freeze_at(NOW)


@pytest.fixture
def admin_totp(user_factory):
    admin = user_factory("boss", mfa_method=MfaMethod.TOTP, is_admin=True)
    confirm_totp(admin)
    return admin


# --- the pending state is not a sign-in -----------------------------------------------------

def test_pending_sign_in_reaches_no_account_page(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    response = client.get(account_url(totp_user.tenant_id))
    assert response.status_code == HTTPStatus.FOUND
    assert response.url.startswith(login_url(totp_user.tenant_id))
    assert SESSION_KEY not in client.session


def test_pending_sign_in_reaches_no_admin_page(client, admin_totp, frozen):
    password_step(client, admin_totp.tenant_id, "boss")
    for path in ("/admin/", "/admin/accounts/user/"):
        response = client.get(path)
        assert response.status_code == HTTPStatus.FOUND, path
        assert "/login/" in response.url
    # Once the code is given, the admin index answers.
    client.post(verify_url(admin_totp.tenant_id), {"code": code_now()})
    assert client.get("/admin/").status_code == HTTPStatus.OK


def test_pending_sign_in_cannot_post_account_actions(client, totp_user, frozen):
    RecoveryCode.objects.create(user=totp_user, code_hash="x$y")
    password_step(client, totp_user.tenant_id, "tina")
    response = client.post(account_url(totp_user.tenant_id), {"action": "regenerate-recovery-codes"})
    assert response.status_code == HTTPStatus.FOUND
    assert list(RecoveryCode.objects.filter(user=totp_user).values_list("code_hash", flat=True)) == ["x$y"]


def test_pending_sign_in_works_up_to_ten_minutes(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    frozen.shift(599)
    client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert is_signed_in(client, totp_user)


def test_pending_sign_in_expires_after_ten_minutes(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    frozen.shift(601)
    response = client.get(verify_url(totp_user.tenant_id))
    assert response.status_code == HTTPStatus.FOUND and response.url == login_url(totp_user.tenant_id)
    response = client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert response.status_code == HTTPStatus.FOUND and response.url == login_url(totp_user.tenant_id)
    assert not is_signed_in(client, totp_user)
    assert "gatehouse_pending" not in client.session


def test_pending_sign_in_of_one_tenant_is_nothing_in_another(client, totp_user, tenant_factory, user_factory, frozen):
    other = tenant_factory("elsewhere", "Elsewhere")
    twin = user_factory("tina", tenant=other, mfa_method=MfaMethod.TOTP)
    confirm_totp(twin)
    password_step(client, totp_user.tenant_id, "tina")
    response = client.post(verify_url("elsewhere"), {"code": code_now()})
    assert response.status_code == HTTPStatus.FOUND and response.url == login_url("elsewhere")
    assert not is_signed_in(client, twin) and not is_signed_in(client, totp_user)


def test_a_password_change_ends_a_pending_sign_in(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    user_set_password(user=totp_user, password="a-brand-new-password-7")
    response = client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert response.url == login_url(totp_user.tenant_id)
    assert not is_signed_in(client, totp_user)


def test_the_mfa_pages_without_a_pending_sign_in_send_to_login(client, tenant):
    for url in (verify_url(tenant.id), setup_url(tenant.id), choose_url(tenant.id)):
        response = client.get(url)
        assert response.status_code == HTTPStatus.FOUND and response.url == login_url(tenant.id), url


# --- the session key -----------------------------------------------------------------------------

def test_session_key_changes_at_the_password_step_and_at_sign_in(client, totp_user, frozen):
    session = client.session  # creates a session (as an earlier visit would)
    session["visited"] = True
    session.save()
    before = client.session.session_key
    password_step(client, totp_user.tenant_id, "tina")
    pending = client.session.session_key
    client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    after = client.session.session_key
    assert is_signed_in(client, totp_user)
    assert len({before, pending, after}) == 3


def test_session_key_changes_at_a_direct_sign_in(client, user):
    session = client.session
    session.save()
    before = session.session_key
    password_step(client, user.tenant_id, "alice")
    assert is_signed_in(client, user) and client.session.session_key != before


def test_an_old_session_key_is_worthless_after_sign_in(client, totp_user, frozen):
    from django.conf import settings
    from django.test import Client

    password_step(client, totp_user.tenant_id, "tina")
    pending_key = client.session.session_key
    client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    fixated = Client()
    fixated.cookies[settings.SESSION_COOKIE_NAME] = pending_key
    assert fixated.get(account_url(totp_user.tenant_id)).status_code == HTTPStatus.FOUND


# --- ?next= ------------------------------------------------------------------------------------

def test_next_to_a_same_site_path_is_followed(client, user):
    response = password_step(client, user.tenant_id, "alice", next_url="/admin/?q=1")
    assert response.url == "/admin/?q=1"


def test_next_survives_the_code_step(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina", next_url="/admin/")
    response = client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert response.url == "/admin/"


@pytest.mark.parametrize(
    "bad",
    ["//evil.com", "//evil.com/path", "https://evil.com/", "http://evil.com", "javascript:alert(1)", "/\\evil.com",
     "\\\\evil.com", "evil.com", "https:/evil.com", "ftp://testserver/x"],
)
def test_next_off_site_is_ignored(client, user, bad):
    response = client.post(login_url(user.tenant_id), {"username": "alice", "password": PASSWORD, "next": bad})
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url(user.tenant_id)


@pytest.mark.parametrize("bad", ["//evil.com", "https://evil.com/", "javascript:alert(1)"])
def test_next_off_site_in_the_query_is_not_put_in_the_page(client, user, bad):
    html = client.get(login_url(user.tenant_id), {"next": bad}).content.decode()
    assert "evil.com" not in html and "javascript:" not in html


def test_an_abandoned_next_is_not_used_by_a_later_sign_in(client, totp_user, user, frozen):
    password_step(client, totp_user.tenant_id, "tina", next_url="/admin/")
    # Tina walks away; Alice signs in on the same browser, without ?next=.
    response = password_step(client, user.tenant_id, "alice")
    assert response.url == account_url(user.tenant_id)


# --- signing out -------------------------------------------------------------------------------

def test_logout_is_post_only(client, user):
    password_step(client, user.tenant_id, "alice")
    assert client.get(logout_url(user.tenant_id)).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert is_signed_in(client, user)
    response = client.post(logout_url(user.tenant_id))
    assert response.status_code == HTTPStatus.FOUND and response.url == login_url(user.tenant_id)
    assert not is_signed_in(client, user)
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.LOGOUT).count() == 1
    assert client.get(account_url(user.tenant_id)).status_code == HTTPStatus.FOUND


def test_logout_ends_a_pending_sign_in(client, totp_user, frozen):
    password_step(client, totp_user.tenant_id, "tina")
    client.post(logout_url(totp_user.tenant_id))
    response = client.post(verify_url(totp_user.tenant_id), {"code": code_now()})
    assert response.url == login_url(totp_user.tenant_id)
    assert not is_signed_in(client, totp_user)


def test_logout_needs_csrf(user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user, backend="accounts.backends.TenantBackend")
    assert strict.post(logout_url(user.tenant_id)).status_code == HTTPStatus.FORBIDDEN
    assert is_signed_in(strict, user)


def test_login_page_sends_a_signed_in_user_to_the_account(client, user):
    password_step(client, user.tenant_id, "alice")
    response = client.get(login_url(user.tenant_id))
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url(user.tenant_id)


# --- choosing a method when the tenant requires MFA -------------------------------------------

@pytest.fixture
def required(tenant_factory, user_factory):
    tenant = tenant_factory("must", "Must MFA", mfa_required=True)
    return user_factory("nina", tenant=tenant, email="nina@example.com")


def test_mfa_required_sends_a_user_without_mfa_to_choose(client, required):
    response = password_step(client, "must", "nina")
    assert response.url == choose_url("must")
    page = client.get(choose_url("must"))
    assert page.status_code == HTTPStatus.OK
    assert 'value="totp"' in page.content.decode() and 'value="email"' in page.content.decode()
    assert not is_signed_in(client, required)
    assert client.get(account_url("must")).status_code == HTTPStatus.FOUND


def test_choose_app_then_set_it_up(client, required, frozen):
    password_step(client, "must", "nina")
    response = client.post(choose_url("must"), {"method": "totp"})
    assert response.url == setup_url("must")
    key = manual_key(client.get(setup_url("must")))
    response = client.post(setup_url("must"), {"code": code_now(key)}, follow=True)
    assert len(recovery_codes_on_page(response)) == 10
    assert is_signed_in(client, required)
    required.refresh_from_db()
    assert required.mfa_method == MfaMethod.TOTP


def test_choose_email_then_confirm_a_code(client, required, frozen):
    password_step(client, "must", "nina")
    response = client.post(choose_url("must"), {"method": "email"})
    assert response.url == verify_url("must")
    mail.outbox.clear()
    page = client.get(verify_url("must"))
    assert "n***@example.com" in page.content.decode()
    assert len(mail.outbox) == 1
    client.post(verify_url("must"), {"code": last_outbox_code()})
    assert is_signed_in(client, required)
    required.refresh_from_db()
    assert required.mfa_method == MfaMethod.EMAIL
    run_notices()
    notices = mail.outbox[1:]  # the "factor set up" notice
    assert len(notices) == 1 and "Must MFA" in notices[0].subject and "Email code" in notices[0].body


def test_choose_without_finishing_changes_nothing(client, required, frozen):
    password_step(client, "must", "nina")
    client.post(choose_url("must"), {"method": "email"})
    client.get(verify_url("must"))
    client.post(logout_url("must"))
    required.refresh_from_db()
    assert required.mfa_method == MfaMethod.NONE
    assert password_step(client, "must", "nina").url == choose_url("must")


@pytest.mark.parametrize("data", [{}, {"method": "none"}, {"method": "sms"}])
def test_choose_refuses_anything_but_app_or_email(client, required, data):
    password_step(client, "must", "nina")
    response = client.post(choose_url("must"), data)
    assert response.status_code == HTTPStatus.OK
    assert form_error_codes(response, "method") in (["required"], ["invalid_choice"])


def test_choose_is_not_offered_when_mfa_is_not_required(client, user):
    password_step(client, user.tenant_id, "alice")
    assert is_signed_in(client, user)
    client.post(logout_url(user.tenant_id))
    # Even reached by hand, the choose page hands over (here: to the login page; nothing pending).
    assert client.get(choose_url(user.tenant_id)).url == login_url(user.tenant_id)


def test_choose_page_hands_an_app_user_to_the_code_page(client, totp_user, tenant, frozen):
    from tenants.services import tenant_update_policy

    tenant_update_policy(tenant=tenant, mfa_required=True)
    password_step(client, tenant.id, "tina")
    assert client.get(choose_url(tenant.id)).url == verify_url(tenant.id)


# --- the account page ---------------------------------------------------------------------------

def sign_in_app_user(client, user):
    password_step(client, user.tenant_id, user.username)
    client.post(verify_url(user.tenant_id), {"code": code_now()})
    assert is_signed_in(client, user)


def test_account_page_needs_a_sign_in(client, tenant):
    response = client.get(account_url(tenant.id))
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == f"{login_url(tenant.id)}?next={account_url(tenant.id)}"


def test_account_page_shows_app_status_and_recovery_codes_left(client, totp_user, frozen):
    from mfa.recovery_codes import recovery_codes_replace

    codes = recovery_codes_replace(user=totp_user)
    password_step(client, totp_user.tenant_id, "tina")
    client.post(verify_url(totp_user.tenant_id), {"code": codes[0]})
    page = client.get(account_url(totp_user.tenant_id))
    assert page.status_code == HTTPStatus.OK
    assert page.context["totp_confirmed"] is True and page.context["recovery_left"] == 9
    html = page.content.decode()
    assert "Authenticator app, set up" in html and "regenerate-recovery-codes" in html


@pytest.mark.parametrize(("method", "shown"), [(MfaMethod.EMAIL, "Codes sent to your email"), (MfaMethod.NONE, "None")])
def test_account_page_shows_other_methods(client, user_factory, method, shown):
    user = user_factory("plain", mfa_method=method)
    client.force_login(user, backend="accounts.backends.TenantBackend")
    html = client.get(account_url(user.tenant_id)).content.decode()
    assert shown in html and "regenerate-recovery-codes" not in html


def test_account_page_regenerates_recovery_codes_and_voids_the_old(client, totp_user, frozen):
    from mfa.recovery_codes import recovery_codes_replace

    old = recovery_codes_replace(user=totp_user)
    sign_in_app_user(client, totp_user)
    response = client.post(account_url(totp_user.tenant_id), {"action": "regenerate-recovery-codes"}, follow=True)
    assert response.redirect_chain == [(recovery_codes_url(totp_user.tenant_id), HTTPStatus.FOUND)]
    new = recovery_codes_on_page(response)
    assert len(new) == 10 and not set(new) & set(old)
    assert response.context["regenerated"] is True
    client.post(logout_url(totp_user.tenant_id))
    password_step(client, totp_user.tenant_id, "tina")
    assert form_error_codes(client.post(verify_url(totp_user.tenant_id), {"code": old[0]}), "code") == ["invalid_code"]
    client.post(verify_url(totp_user.tenant_id), {"code": new[0]})
    assert is_signed_in(client, totp_user)


@pytest.mark.parametrize("data", [{}, {"action": "delete-everything"}])
def test_account_page_refuses_unknown_actions(client, totp_user, frozen, data):
    sign_in_app_user(client, totp_user)
    response = client.post(account_url(totp_user.tenant_id), data, follow=True)
    assert response.status_code == HTTPStatus.OK
    assert page_messages(response) == ["That action is not available."]
    assert not RecoveryCode.objects.filter(user=totp_user).exists()


def test_account_page_does_not_regenerate_for_email_users(client, user_factory):
    user = user_factory("mailer", mfa_method=MfaMethod.EMAIL)
    client.force_login(user, backend="accounts.backends.TenantBackend")
    client.post(account_url(user.tenant_id), {"action": "regenerate-recovery-codes"})
    assert not RecoveryCode.objects.filter(user=user).exists()


# --- notices and MFA reset -----------------------------------------------------------------------

def test_mfa_reset_clears_factors_and_emails_the_user(client, totp_user, frozen):
    from mfa.email_codes import email_code_send
    from mfa.recovery_codes import recovery_codes_replace

    recovery_codes_replace(user=totp_user)
    email_code_send(user=totp_user)
    mail.outbox.clear()
    mfa_reset(user=totp_user)
    assert not TOTPDevice.objects.filter(user=totp_user).exists()
    assert not RecoveryCode.objects.filter(user=totp_user).exists()
    assert not EmailCode.objects.filter(user=totp_user).exists()
    run_notices()
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["tina@example.com"]
    assert "Acme Corp" in notice.subject and "reset" in notice.subject and "Acme Corp" in notice.body
    assert AuditEvent.objects.filter(user=totp_user, kind=AuditEvent.Kind.MFA_RESET).count() == 1
    # The next sign-in sets the app up again, with a new key.
    assert password_step(client, totp_user.tenant_id, "tina").url == setup_url(totp_user.tenant_id)


def test_a_notice_that_cannot_be_sent_does_not_undo_the_event(totp_user, settings, smtp_server):
    from tests.conftest import free_port

    settings.EMAIL_PORT = free_port()  # no SMTP server there
    mfa_reset(user=totp_user)
    run_notices()  # the send fails: the notice waits for a later try
    assert not TOTPDevice.objects.filter(user=totp_user).exists()


def test_code_email_goes_to_the_user_only(client, email_user, frozen):
    password_step(client, email_user.tenant_id, "emma")
    client.get(verify_url(email_user.tenant_id))
    assert [m.to for m in mail.outbox] == [["emma@example.com"]]
    assert code_from_mail(mail.outbox[0]).isdigit()

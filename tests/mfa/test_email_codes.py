"""Emailed codes, sent through a real SMTP server on loopback (aiosmtpd, the ``smtp_server`` fixture)."""
from datetime import datetime, timezone as dt_timezone
from http import HTTPStatus

import pytest

from accounts.errors import CodeAlreadyUsed, EmailUnavailable, InvalidCode, ResendTooSoon
from accounts.models import AuditEvent, MfaMethod
from accounts.tokens import AMR_OTP
from mfa import crypto
from mfa.models import EmailCode
from mfa.email_codes import email_code_send, email_code_use, mask_email
from mfa.verify import code_verify
from tests.conftest import free_port, freeze_at, run_notices
from tests.accounts.flows import (
    account_url, code_from_mail, form_error_codes, is_signed_in, logout_url, page_messages, password_step, verify_url,
)

NOW = datetime(2030, 3, 1, 9, 0, 0, tzinfo=dt_timezone.utc)


frozen = freeze_at(NOW)


@pytest.fixture
def emailer(user_factory, tenant_factory):
    tenant = tenant_factory("mailco", "Mail Co", email_code_ttl_seconds=300, email_resend_seconds=60)
    return user_factory("emma", tenant=tenant, mfa_method=MfaMethod.EMAIL, email="emma.watson@example.com")


def start(client, user):
    response = password_step(client, user.tenant_id, user.username)
    assert response.status_code == HTTPStatus.FOUND and response.url == verify_url(user.tenant_id)
    return client.get(verify_url(user.tenant_id))


# --- the service -------------------------------------------------------------------------------

def test_send_reports_the_masked_address_and_the_gap(emailer, smtp_server, frozen):
    assert email_code_send(user=emailer) == {"sentTo": "e***@example.com", "resendAfter": 60}
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == "emma.watson@example.com"
    assert "Mail Co" in message["Subject"]


def test_the_mail_says_when_it_was_sent_and_how_long_it_lasts(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    body = smtp_server.bodies()[0]
    assert "09:00:00 UTC" in body and "1 March 2030" in body
    assert "5 minutes" in body
    assert code_from_mail(smtp_server.messages[0]) in smtp_server.messages[0]["Subject"]


def test_the_code_is_stored_only_as_a_keyed_hash(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    sent = code_from_mail(smtp_server.messages[0])
    row = EmailCode.objects.get(user=emailer)
    assert sent not in row.code_hash
    assert row.code_hash == crypto.keyed_hash(f"{emailer.pk}:{emailer.email}:{sent}", purpose="email-code")  # bound to the address too
    assert (row.expires_at - row.created_at).total_seconds() == 300


def test_resend_inside_the_gap_is_refused_with_the_wait(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    frozen.shift(45)
    with pytest.raises(ResendTooSoon) as exc:
        email_code_send(user=emailer)
    assert exc.value.code == "resend_too_soon" and exc.value.extra["retry_after"] == 15
    assert len(smtp_server.messages) == 1 and EmailCode.objects.filter(user=emailer).count() == 1


def test_resend_after_the_gap_is_sent(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    frozen.shift(60)
    email_code_send(user=emailer)
    assert len(smtp_server.messages) == 2 and EmailCode.objects.filter(user=emailer).count() == 2


def test_a_zero_gap_allows_an_immediate_resend(user_factory, tenant_factory, smtp_server, frozen):
    tenant = tenant_factory(email_resend_seconds=0)
    user = user_factory("quick", tenant=tenant, mfa_method=MfaMethod.EMAIL)
    email_code_send(user=user)
    email_code_send(user=user)
    assert len(smtp_server.messages) == 2


def test_at_most_three_codes_are_live_and_a_new_one_retires_the_oldest(user_factory, tenant_factory, smtp_server, frozen):
    """Issue 15, item 6: with no resend gap, a flood of sends leaves three live codes (each
    live code is one more right answer for a guesser)."""
    tenant = tenant_factory(email_resend_seconds=0)
    user = user_factory("flood", tenant=tenant, mfa_method=MfaMethod.EMAIL)
    for _ in range(6):
        email_code_send(user=user)
    assert EmailCode.objects.filter(user=user).count() == 3
    codes = [code_from_mail(m) for m in smtp_server.messages]
    with pytest.raises(InvalidCode):
        code_verify(user=user, code=codes[2])  # retired
    assert code_verify(user=user, code=codes[3]).amr == AMR_OTP  # the oldest live one


def test_an_earlier_unexpired_code_works_after_a_resend_and_ends_them_all(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    frozen.shift(61)
    email_code_send(user=emailer)
    first, second = (code_from_mail(m) for m in smtp_server.messages)
    assert code_verify(user=emailer, code=first).amr == AMR_OTP
    assert EmailCode.objects.filter(user=emailer).count() == 0
    with pytest.raises(InvalidCode):
        code_verify(user=emailer, code=second)


def test_an_expired_code_is_refused(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    frozen.shift(301)
    with pytest.raises(InvalidCode):
        code_verify(user=emailer, code=code_from_mail(smtp_server.messages[0]))


def test_a_code_is_accepted_up_to_the_end_of_its_lifetime(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    frozen.shift(299)
    assert code_verify(user=emailer, code=code_from_mail(smtp_server.messages[0])).amr == AMR_OTP


def test_a_used_code_is_refused(emailer, smtp_server, frozen):
    email_code_send(user=emailer)
    sent = code_from_mail(smtp_server.messages[0])
    code_verify(user=emailer, code=sent)
    with pytest.raises(CodeAlreadyUsed):
        code_verify(user=emailer, code=sent)


def test_a_code_of_another_user_is_refused(emailer, user_factory, smtp_server, frozen):
    other = user_factory("other", tenant=emailer.tenant, mfa_method=MfaMethod.EMAIL)
    email_code_send(user=other)
    with pytest.raises(InvalidCode):
        code_verify(user=emailer, code=code_from_mail(smtp_server.messages[0]))


def test_smtp_refusing_the_message_writes_nothing(emailer, smtp_server, frozen):
    smtp_server.fail = True
    with pytest.raises(EmailUnavailable) as exc:
        email_code_send(user=emailer)
    assert exc.value.code == "email_unavailable" and exc.value.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert not EmailCode.objects.exists()


def test_smtp_server_down_writes_nothing(emailer, smtp_server, settings, frozen):
    settings.EMAIL_PORT = free_port()  # nothing listens there: connection refused
    with pytest.raises(EmailUnavailable):
        email_code_send(user=emailer)
    assert not EmailCode.objects.exists()


def test_mask_email():
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email("a@b.co") == "a***@b.co"
    assert mask_email("nodomain") == "***"


# --- the pages ---------------------------------------------------------------------------------

def test_opening_the_code_page_sends_the_first_code_and_it_signs_in(client, emailer, smtp_server, frozen):
    page = start(client, emailer)
    assert page.status_code == HTTPStatus.OK
    assert len(smtp_server.messages) == 1
    response = client.post(verify_url(emailer.tenant_id), {"code": code_from_mail(smtp_server.messages[0])})
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url(emailer.tenant_id)
    assert is_signed_in(client, emailer)


def test_reloading_the_code_page_does_not_send_again(client, emailer, smtp_server, frozen):
    start(client, emailer)
    client.get(verify_url(emailer.tenant_id))
    assert len(smtp_server.messages) == 1


def test_the_page_shows_the_masked_address_never_the_full_one(client, emailer, smtp_server, frozen):
    page = start(client, emailer)
    html = page.content.decode()
    assert "e***@example.com" in html
    assert "emma.watson@example.com" not in html and "emma.watson" not in html


def test_the_resend_button_honours_the_gap(client, emailer, smtp_server, frozen):
    start(client, emailer)
    response = client.post(verify_url(emailer.tenant_id), {"action": "resend"}, follow=True)
    assert len(smtp_server.messages) == 1
    assert ResendTooSoon(60).message in page_messages(response)
    frozen.shift(60)
    client.post(verify_url(emailer.tenant_id), {"action": "resend"})
    assert len(smtp_server.messages) == 2


def test_an_earlier_code_still_works_on_the_page_after_a_resend(client, emailer, smtp_server, frozen):
    start(client, emailer)
    frozen.shift(61)
    client.post(verify_url(emailer.tenant_id), {"action": "resend"})
    first = code_from_mail(smtp_server.messages[0])
    response = client.post(verify_url(emailer.tenant_id), {"code": first})
    assert response.status_code == HTTPStatus.FOUND and is_signed_in(client, emailer)


def test_an_expired_code_is_refused_on_the_page(client, emailer, smtp_server, frozen):
    start(client, emailer)
    frozen.shift(301)
    response = client.post(verify_url(emailer.tenant_id), {"code": code_from_mail(smtp_server.messages[0])})
    assert response.status_code == HTTPStatus.OK
    assert form_error_codes(response, "code") == ["invalid_code"]
    assert not is_signed_in(client, emailer)


def test_a_used_code_is_refused_at_the_next_sign_in(client, emailer, smtp_server, frozen):
    start(client, emailer)
    used = code_from_mail(smtp_server.messages[0])
    client.post(verify_url(emailer.tenant_id), {"code": used})
    client.post(logout_url(emailer.tenant_id))
    start(client, emailer)
    response = client.post(verify_url(emailer.tenant_id), {"code": used})
    assert form_error_codes(response, "code") == ["code_already_used"]  # the code last accepted: not counted
    assert not is_signed_in(client, emailer)
    # The code mailed for this sign-in works.
    response = client.post(verify_url(emailer.tenant_id), {"code": code_from_mail(smtp_server.messages[-1])})
    assert is_signed_in(client, emailer)


def test_the_code_of_a_resend_ends_the_earlier_one(client, emailer, smtp_server, frozen):
    start(client, emailer)
    frozen.shift(61)
    client.post(verify_url(emailer.tenant_id), {"action": "resend"})
    first, second = (code_from_mail(m) for m in smtp_server.messages)
    client.post(verify_url(emailer.tenant_id), {"code": second})
    assert is_signed_in(client, emailer)
    client.post(logout_url(emailer.tenant_id))
    password_step(client, emailer.tenant_id, emailer.username)
    response = client.post(verify_url(emailer.tenant_id), {"code": first})
    assert form_error_codes(response, "code") == ["invalid_code"]


@pytest.mark.parametrize("how", ["refused", "down"])
def test_smtp_trouble_shows_a_message_and_writes_nothing(client, emailer, smtp_server, settings, frozen, how):
    port = settings.EMAIL_PORT
    if how == "refused":
        smtp_server.fail = True  # the server answers 451 to the message
    else:
        settings.EMAIL_PORT = free_port()  # no server at all
    page = start(client, emailer)
    assert page.status_code == HTTPStatus.OK
    assert EmailUnavailable.message in page_messages(page)
    assert not EmailCode.objects.exists()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CODE_FAILURE).exists()
    emailer.refresh_from_db()
    assert emailer.failed_code_count == 0
    # Once mail works again, the resend button delivers a code that signs in.
    smtp_server.fail, settings.EMAIL_PORT = False, port
    client.post(verify_url(emailer.tenant_id), {"action": "resend"})
    assert len(smtp_server.messages) == 1
    client.post(verify_url(emailer.tenant_id), {"code": code_from_mail(smtp_server.messages[0])})
    assert is_signed_in(client, emailer)


def test_wrong_emailed_codes_lock_the_account(client, user_factory, tenant_factory, smtp_server, frozen):
    tenant = tenant_factory(mfa_max_attempts=2, lockout_seconds=600)
    user = user_factory("guess", tenant=tenant, mfa_method=MfaMethod.EMAIL)
    start(client, user)
    sent = code_from_mail(smtp_server.messages[0])
    wrong = "000000" if sent != "000000" else "111111"
    assert form_error_codes(client.post(verify_url(tenant.id), {"code": wrong}), "code") == ["invalid_code"]
    assert form_error_codes(client.post(verify_url(tenant.id), {"code": wrong}), "code") == ["locked_out"]
    response = client.post(verify_url(tenant.id), {"code": sent})
    assert form_error_codes(response, "code") == ["locked_out"]
    assert not is_signed_in(client, user)
    # The lock notice went through the same SMTP server.
    run_notices()
    assert any("locked" in m["Subject"] for m in smtp_server.messages)


def test_a_code_mailed_before_the_address_changed_no_longer_works(emailer, smtp_server, frozen):
    """The code was read at the old address: after the change it proves nothing about the new
    one, so it is refused, and the new address stays unverified."""
    from accounts.services import user_update

    email_code_send(user=emailer)
    sent = code_from_mail(smtp_server.messages[0])
    user_update(user=emailer, email="elsewhere@example.com")
    emailer.refresh_from_db()
    assert email_code_use(user=emailer, code=sent) is False
    assert emailer.email_verified_at is None

"""The password pages: "Forgot password?", the reset link's page, the change on the account page."""
import re
from http import HTTPStatus

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client

from accounts.models import MfaMethod, RefreshTokenChain, User
from accounts.passwords import reset_token_make
from accounts.tokens import AMR_PASSWORD, token_pair_issue
from tests.accounts.flows import account_url, form_error_codes, is_signed_in, login_url, page_messages, password_step, verify_url
from tests.admin.conftest import signed_in_client
from tests.conftest import PASSWORD, confirm_totp, run_notices

NEW = "Quiet-Harbour-Lantern-42"


def forgot_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/password/forgot/"


def reset_url(tenant_id: str, token: str) -> str:
    return f"/tenant/{tenant_id}/password/reset/{token}/"


def change_url(tenant_id: str) -> str:
    return f"/tenant/{tenant_id}/account/password/"


def mailed_link() -> str:
    found = re.search(r"http://testserver(/tenant/\S+/password/reset/\S+/)", mail.outbox[-1].body)
    assert found, mail.outbox[-1].body
    return found.group(1)


# --- forgot ----------------------------------------------------------------------------------


def test_the_sign_in_page_links_to_forgot(client, tenant):
    assert forgot_url("acme") in client.get(login_url("acme")).content.decode()


def test_forgot_answers_the_same_for_a_match_and_no_match(client, user):
    pages = []
    for login in ("alice", "nobody-here"):
        response = client.post(forgot_url("acme"), {"login": login})
        assert response.status_code == HTTPStatus.OK
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
        assert login not in page
        pages.append(page)
    assert pages[0] == pages[1]
    run_notices()
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_forgot_refuses_an_empty_login(client, tenant):
    response = client.post(forgot_url("acme"), {"login": ""})
    assert form_error_codes(response, "login") == ["required"]


def test_forgot_is_held_to_the_per_ip_limit(client, tenant, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "2/min"}}
    assert [client.post(forgot_url("acme"), {"login": "x"}).status_code for _ in range(3)] == [200, 200, 429]


# --- the reset link ------------------------------------------------------------------------------


def test_the_mailed_link_sets_a_password_and_signs_nobody_in(client, totp_user):
    client.post(forgot_url("acme"), {"login": "tina"})
    run_notices()
    link = mailed_link()
    form_page = client.get(link)
    assert form_page.status_code == HTTPStatus.OK and 'name="new_password1"' in form_page.content.decode()
    assert "At least 12 characters." in form_page.content.decode()
    assert form_page["Referrer-Policy"] == "no-referrer"
    done = client.post(link, {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == HTTPStatus.FOUND and done.url == login_url("acme")
    assert SESSION_KEY not in client.session
    assert client.get(account_url("acme")).status_code == HTTPStatus.FOUND  # not signed in
    # The new password leads to the second factor, not to the account.
    step = password_step(client, "acme", "tina", NEW)
    assert step.url == verify_url("acme") and not is_signed_in(client, totp_user)
    # The link works once.
    again = Client().get(link)
    assert again.status_code == HTTPStatus.OK and "Ask for a new link" in again.content.decode()


def test_a_post_to_the_link_itself_works(client, user):
    response = client.post(reset_url("acme", reset_token_make(user)), {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == HTTPStatus.FOUND
    assert User.objects.get(pk=user.pk).check_password(NEW)


@pytest.mark.parametrize("token", ["garbage", "0" * 32 + "-abc-def", "set-password"])
def test_a_bad_link_offers_a_new_one(client, user, token):
    for response in (client.get(reset_url("acme", token)),
                     client.post(reset_url("acme", token), {"new_password1": NEW, "new_password2": NEW})):
        assert response.status_code == HTTPStatus.OK
        assert forgot_url("acme") in response.content.decode()
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_another_tenants_link_offers_a_new_one(client, user, tenant_factory):
    tenant_factory("other")
    response = client.get(reset_url("other", reset_token_make(user)))
    assert "Ask for a new link" in response.content.decode()


def test_the_reset_page_names_the_rule_broken_and_mismatches(client, user):
    url = reset_url("acme", reset_token_make(user))
    response = client.post(url, {"new_password1": "password1234", "new_password2": "password1234"})
    assert form_error_codes(response, "new_password1") == ["password_too_common"]
    response = client.post(url, {"new_password1": NEW, "new_password2": NEW + "x"})
    assert form_error_codes(response, "new_password2") == ["password_mismatch"]
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


# --- the change ----------------------------------------------------------------------------------


def test_the_account_page_links_to_the_change(user):
    assert change_url("acme") in signed_in_client(user).get(account_url("acme")).content.decode()


def test_the_change_page_needs_a_sign_in(client, tenant):
    response = client.get(change_url("acme"))
    assert response.status_code == HTTPStatus.FOUND and response.url.startswith(login_url("acme"))


def test_change_keeps_this_session_and_ends_the_others(user):
    here, elsewhere = signed_in_client(user), signed_in_client(user)
    token_pair_issue(user=user, amr=AMR_PASSWORD)
    response = here.post(change_url("acme"), {"current_password": PASSWORD, "new_password1": NEW, "new_password2": NEW})
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url("acme")
    assert here.get(account_url("acme")).status_code == HTTPStatus.OK
    assert elsewhere.get(account_url("acme")).status_code == HTTPStatus.FOUND
    assert not RefreshTokenChain.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert User.objects.get(pk=user.pk).check_password(NEW)
    run_notices()
    assert "changed" in mail.outbox[-1].subject


def test_a_wrong_current_password_is_counted_and_can_lock(user, tenant):
    tenant.password_max_attempts = 2
    tenant.save()
    client = signed_in_client(user)
    body = {"current_password": "wrong-wrong-1", "new_password1": NEW, "new_password2": NEW}
    assert form_error_codes(client.post(change_url("acme"), body), "current_password") == ["invalid_credentials"]
    assert form_error_codes(client.post(change_url("acme"), body), "current_password") == ["invalid_credentials"]
    body["current_password"] = PASSWORD
    assert form_error_codes(client.post(change_url("acme"), body), "current_password") == ["locked_out"]
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_the_change_page_names_the_rule_broken(user):
    response = signed_in_client(user).post(change_url("acme"), {"current_password": PASSWORD, "new_password1": "short",
                                                                "new_password2": "short"})
    assert "password_too_short" in form_error_codes(response, "new_password1")
    assert User.objects.get(pk=user.pk).failed_password_count == 0


def test_an_mfa_user_changes_with_the_second_factor_session(user_factory):
    tina = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(tina)
    client = signed_in_client(tina)
    response = client.post(change_url("acme"), {"current_password": PASSWORD, "new_password1": NEW, "new_password2": NEW})
    assert response.status_code == HTTPStatus.FOUND
    assert "password has been changed" in " ".join(page_messages(client.get(account_url("acme"))))


def test_the_token_is_cut_out_of_log_lines():
    import logging

    from config.gunicorn import RedactingLogger
    from config.logging import JsonFormatter, OneLineFormatter, redact

    token = "5b7f2f6e3f0c4f0e9a517f7d2c1e9b10-cf3k2a-3c1a0b9d8e7f6a5b4c3d"
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Too Many Requests: %s",
                               (f"/tenant/acme/password/reset/{token}/",), None)
    assert token not in OneLineFormatter("%(message)s").format(record)
    access = logging.LogRecord("gatehouse.access", logging.INFO, __file__, 1, "%s %s", ("GET", f"/tenant/acme/password/reset/{token}/"),
                               None)
    access.path = f"/tenant/acme/password/reset/{token}/"
    access.request_id = "-"
    line = JsonFormatter().format(access)
    assert token not in line and "/password/reset/[redacted]/" in line
    assert redact(f'"POST /tenant/acme/password/reset/{token}/ HTTP/1.1" 302') == '"POST /tenant/acme/password/reset/[redacted]/ HTTP/1.1" 302'
    assert RedactingLogger.atoms is not None  # gunicorn.conf.py installs it

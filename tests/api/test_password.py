"""Password self-service through the API: auth/password/forgot, auth/password/reset, Me,
Me/password, and the admins' sendPasswordReset."""
import re
from http import HTTPStatus

import pytest
from django.core import mail
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import AuditEvent, MfaMethod, RefreshTokenChain, User
from accounts.passwords import reset_token_make
from accounts.tokens import AMR_OTP, AMR_PASSWORD, token_pair_issue
from mfa.models import TOTPDevice
from tests.api.helpers import access_token, assert_error, call, code_now, v2
from tests.conftest import PASSWORD, confirm_totp, run_notices

NEW = "Quiet-Harbour-Lantern-42"
NOW_TIME = timezone.now


def mailed_token() -> str:
    found = re.search(r"/password/reset/(\S+?)/", mail.outbox[-1].body)
    assert found, mail.outbox[-1].body
    return found.group(1)


@pytest.fixture
def tina(user_factory):
    user = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


# --- forgot ----------------------------------------------------------------------------------


def test_forgot_is_202_and_byte_identical_for_a_match_and_no_match(client, tina):
    answers = [call(client, "post", v2("acme", "auth/password/forgot"), {"login": login})
               for login in ("tina", "tina@example.com", "nobody", "nobody@example.com")]
    assert {a.status_code for a in answers} == {HTTPStatus.ACCEPTED}
    assert len({a.content for a in answers}) == 1
    per_request = {"Date", "X-Request-ID"}  # a new one on every answer
    assert len({tuple(sorted((k, v) for k, v in a.headers.items() if k not in per_request)) for a in answers}) == 1
    run_notices()
    assert len(mail.outbox) == 1  # two matches of one account within the resend gap: one mail


@pytest.mark.parametrize("body", [{}, {"login": 5}, {"login": "x", "extra": 1}, {"login": "x" * 255}])
def test_forgot_refuses_a_bad_body(client, tenant, body):
    assert_error(call(client, "post", v2("acme", "auth/password/forgot"), body), HTTPStatus.BAD_REQUEST, "invalid_request")


def test_forgot_of_an_unknown_tenant_is_404(client, db):
    assert_error(call(client, "post", v2("nope", "auth/password/forgot"), {"login": "x"}), HTTPStatus.NOT_FOUND, "not_found")


def test_forgot_is_held_to_the_per_ip_limit(client, tenant, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "2/min"}}
    codes = [call(client, "post", v2("acme", "auth/password/forgot"), {"login": "x"}).status_code for _ in range(3)]
    assert codes == [202, 202, 429]


def test_forgot_answers_503_and_queues_nothing_when_the_queue_is_down(transactional_db, tenant):
    def refuse(execute, sql, params, many, context):
        if sql.lstrip().startswith('INSERT INTO "django_tasks'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        response = call(Client(raise_request_exception=False), "post", v2("acme", "auth/password/forgot"), {"login": "x"})
    assert_error(response, HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable")
    assert not DBTaskResult.objects.exists()


# --- reset -----------------------------------------------------------------------------------


def test_forgot_then_reset_then_sign_in_needs_the_second_factor(client, tina, frozen):
    call(client, "post", v2("acme", "auth/password/forgot"), {"login": "tina"})
    run_notices()
    token = mailed_token()
    response = call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": NEW})
    assert response.status_code == HTTPStatus.NO_CONTENT and not response.content
    login = call(client, "post", v2("acme", "auth/login"), {"username": "tina", "password": NEW}).json()
    assert login["mfaRequired"] is True and "accessToken" not in login
    tokens = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": login["mfaToken"], "code": code_now()}).json()
    assert tokens["tokenType"] == "Bearer"
    # Used once: refused the second time.
    again = call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": "Another-Long-Pass-77"})
    assert_error(again, HTTPStatus.BAD_REQUEST, "invalid_token")


def test_reset_revokes_the_refresh_tokens(client, tina):
    refresh = token_pair_issue(user=tina, amr=AMR_OTP)["refreshToken"]
    call(client, "post", v2("acme", "auth/password/reset"), {"token": reset_token_make(tina), "newPassword": NEW})
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": refresh}), 401, "invalid_token")


@pytest.mark.parametrize("token", ["", "garbage", "0" * 32 + "-c1b2a3-" + "0" * 20, "x" * 200])
def test_a_forged_token_is_invalid_token(client, tina, token):
    response = call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": NEW})
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_token")


def test_another_tenants_token_is_invalid_token(client, tina, tenant_factory):
    tenant_factory("other")
    response = call(client, "post", v2("other", "auth/password/reset"), {"token": reset_token_make(tina), "newPassword": NEW})
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_token")


def test_an_expired_token_is_invalid_token(client, tina, time_machine):
    time_machine.move_to(NOW_TIME(), tick=False)
    token = reset_token_make(tina)
    time_machine.shift(tina.tenant.password_reset_ttl_seconds + 5)
    response = call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": NEW})
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_token")


def test_a_password_breaking_a_rule_is_invalid_password_naming_it(client, tina):
    token = reset_token_make(tina)
    response = call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": "password1234"})
    body = assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_password")
    assert body["fields"] == {"newPassword": ["This password is too common."]}
    long = call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": "Zq8-" * 257})
    assert "at most 1024" in assert_error(long, HTTPStatus.BAD_REQUEST, "invalid_password")["fields"]["newPassword"][0]
    assert User.objects.get(pk=tina.pk).check_password(PASSWORD)


# --- Me ----------------------------------------------------------------------------------------


def test_me_answers_the_user(client, tina):
    response = call(client, "get", v2("acme", "Me"), token=access_token(tina))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["id"] == str(tina.pk) and response.json()["username"] == "tina"
    assert_error(call(client, "get", v2("acme", "Me")), HTTPStatus.UNAUTHORIZED, "not_authenticated")


def test_me_password_changes_and_keeps_only_the_callers_chain(client, tina):
    mine = token_pair_issue(user=tina, amr=AMR_OTP)
    theirs = token_pair_issue(user=tina, amr=AMR_OTP)
    body = {"currentPassword": PASSWORD, "newPassword": NEW}
    response = call(client, "post", v2("acme", "Me/password"), body, token=mine["accessToken"])
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert User.objects.get(pk=tina.pk).check_password(NEW)
    assert call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": mine["refreshToken"]}).status_code == 200
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": theirs["refreshToken"]}), 401,
                 "invalid_token")
    run_notices()
    assert "changed" in mail.outbox[-1].subject


def test_me_password_counts_a_wrong_current_password(client, tina):
    tina.tenant.password_max_attempts = 2
    tina.tenant.save()
    token = access_token(tina)
    body = {"currentPassword": "wrong-wrong-1", "newPassword": NEW}
    for _ in range(2):
        assert_error(call(client, "post", v2("acme", "Me/password"), body, token=token), 401, "invalid_credentials")
    locked = call(client, "post", v2("acme", "Me/password"), {**body, "currentPassword": PASSWORD}, token=token)
    assert_error(locked, HTTPStatus.TOO_MANY_REQUESTS, "locked_out")
    assert int(locked["Retry-After"]) > 0
    assert_error(call(client, "post", v2("acme", "auth/login"), {"username": "tina", "password": PASSWORD}), 429, "locked_out")


def test_me_password_names_the_rule(client, tina):
    response = call(client, "post", v2("acme", "Me/password"), {"currentPassword": PASSWORD, "newPassword": "tina@example.com"},
                    token=access_token(tina))
    assert set(assert_error(response, 400, "invalid_password")["fields"]) == {"newPassword"}


def test_me_password_needs_a_token_of_this_tenant(client, tina, tenant_factory):
    tenant_factory("other")
    body = {"currentPassword": PASSWORD, "newPassword": NEW}
    assert_error(call(client, "post", v2("acme", "Me/password"), body), 401, "not_authenticated")
    assert_error(call(client, "post", v2("other", "Me/password"), body, token=access_token(tina)), 401, "invalid_token")


# --- the admins' sendPasswordReset -------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_send_password_reset_mails_a_link(client, admin, admin_token, tina, method):
    response = call(client, method, v2("acme", f"Users/{tina.pk}"), {"sendPasswordReset": True}, token=admin_token)
    assert response.status_code == HTTPStatus.OK
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PASSWORD_RESET_SENT)
    assert (event.user, event.actor) == (tina, admin)
    run_notices()
    assert mail.outbox[-1].to == ["tina@example.com"] and "administrator" in mail.outbox[-1].body
    token = mailed_token()
    assert call(client, "post", v2("acme", "auth/password/reset"), {"token": token, "newPassword": NEW}).status_code == 204


def test_onboarding_without_a_password(client, admin, admin_token):
    created = call(client, "post", v2("acme", "Users"), {"username": "newbie", "email": "newbie@example.com"}, token=admin_token)
    assert created.status_code == HTTPStatus.CREATED
    uid = created.json()["id"]
    call(client, "patch", v2("acme", f"Users/{uid}"), {"sendPasswordReset": True}, token=admin_token)
    run_notices()
    call(client, "post", v2("acme", "auth/password/reset"), {"token": mailed_token(), "newPassword": NEW})
    assert "accessToken" in call(client, "post", v2("acme", "auth/login"), {"username": "newbie", "password": NEW}).json()


def test_send_password_reset_after_an_mfa_reset_in_one_call_still_works(client, admin, admin_token, tina):
    call(client, "patch", v2("acme", f"Users/{tina.pk}"), {"resetTOTP": True, "sendPasswordReset": True}, token=admin_token)
    assert not TOTPDevice.objects.filter(user=tina).exists()
    run_notices()
    assert call(client, "post", v2("acme", "auth/password/reset"), {"token": mailed_token(), "newPassword": NEW}).status_code == 204


def test_nothing_is_written_when_the_mail_cannot_be_queued(transactional_db, admin, admin_token, tina):
    before = list(User.objects.order_by("pk").values())

    def refuse(execute, sql, params, many, context):
        if sql.lstrip().startswith('INSERT INTO "django_tasks'):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    client = Client(raise_request_exception=False)
    with connection.execute_wrapper(refuse):
        response = call(client, "patch", v2("acme", f"Users/{tina.pk}"),
                        {"email": "changed@example.com", "unlock": True, "sendPasswordReset": True}, token=admin_token)
    assert_error(response, HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable")
    assert list(User.objects.order_by("pk").values()) == before
    assert not AuditEvent.objects.exists() and not DBTaskResult.objects.exists()


def test_send_password_reset_to_an_inactive_user_is_refused(client, admin, admin_token, tina):
    response = call(client, "patch", v2("acme", f"Users/{tina.pk}"), {"isActive": False, "sendPasswordReset": True},
                    token=admin_token)
    assert "sendPasswordReset" in assert_error(response, 400, "invalid_request")["fields"]
    assert User.objects.get(pk=tina.pk).is_active

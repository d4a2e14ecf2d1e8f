"""The sign-in flow of the API: auth/login → totp/setup | email/send → verify → tokens; refresh; logout."""
import re
from datetime import timedelta
from http import HTTPStatus

import jwt
import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import AuditEvent, MfaMethod, User
from mfa.models import EmailCode, RecoveryCode, TOTPDevice
from tenants.signing import jwt_sign, jwt_verify
from tests.api.helpers import assert_error, call, code_now, v2
from tests.conftest import FIXED_SECRET, PASSWORD, confirm_totp
from mfa.setup import mfa_reset


def login(client, username, password=PASSWORD, tenant_id="acme"):
    return call(client, "post", v2(tenant_id, "auth/login"), {"username": username, "password": password})


def claims(token: str) -> dict:
    """The claims, verified with the tenant's signing keys."""
    unverified = jwt.decode(token, options={"verify_signature": False})
    return jwt_verify(token, tenant_id=unverified["tid"], token_type=unverified["token_type"])


def assert_tokens(body: dict, *, amr: list[str]):
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 300
    access = claims(body["accessToken"])
    assert access["token_type"] == "access"
    assert access["amr"] == amr
    assert claims(body["refreshToken"])["token_type"] == "refresh"
    return access


def mailed_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


# --- auth/login -----------------------------------------------------------------------------


def test_login_without_second_factor_answers_tokens(client, user):
    response = login(client, "alice")
    assert response.status_code == HTTPStatus.OK
    access = assert_tokens(response.json(), amr=["pwd"])
    assert access["sub"] == str(user.pk)
    assert access["tid"] == "acme"
    assert access["admin"] is False
    assert set(response.json()) == {"accessToken", "refreshToken", "tokenType", "expiresIn"}
    assert AuditEvent.objects.filter(user=user, kind="login_success", channel="api").count() == 1
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_is_case_insensitive_on_username(client, user):
    assert login(client, "ALICE").status_code == HTTPStatus.OK


def test_login_of_totp_user_asks_for_code(client, totp_user):
    body = login(client, "tina").json()
    assert body["mfaRequired"] is True
    assert body["mfaMethod"] == "totp"
    assert body["enrollmentRequired"] is False
    assert isinstance(body["mfaToken"], str) and "accessToken" not in body


def test_login_of_email_user_asks_for_code(client, email_user):
    body = login(client, "emma").json()
    assert (body["mfaMethod"], body["enrollmentRequired"]) == ("email", False)


def test_login_of_app_user_without_app_requires_setup(client, user_factory):
    user_factory("nina", mfa_method=MfaMethod.TOTP)
    body = login(client, "nina").json()
    assert (body["mfaRequired"], body["mfaMethod"], body["enrollmentRequired"]) == (True, "totp", True)


def test_login_in_tenant_requiring_mfa_offers_app_enrollment(client, tenant_factory, user_factory):
    strict = tenant_factory("strict", mfa_required=True)
    user_factory("nemo", tenant=strict)
    body = login(client, "nemo", tenant_id="strict").json()
    assert (body["mfaRequired"], body["mfaMethod"], body["enrollmentRequired"]) == (True, "totp", True)


@pytest.mark.parametrize("username, password", [("alice", "wrong-password-1"), ("nobody", PASSWORD)])
def test_login_refuses_unknown_user_and_wrong_password_alike(client, user, username, password):
    body = assert_error(login(client, username, password), HTTPStatus.UNAUTHORIZED, "invalid_credentials")
    assert set(body) == {"error", "detail"}


def test_inactive_user_cannot_log_in(client, user):
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(login(client, "alice"), HTTPStatus.UNAUTHORIZED, "invalid_credentials")


def test_login_locks_out_with_retry_after(client, tenant_factory, user_factory):
    small = tenant_factory("small", password_max_attempts=2, lockout_seconds=120)
    user_factory("lou", tenant=small)
    assert_error(login(client, "lou", "bad-password-1", "small"), HTTPStatus.UNAUTHORIZED, "invalid_credentials")
    assert_error(login(client, "lou", "bad-password-1", "small"), HTTPStatus.UNAUTHORIZED, "invalid_credentials")
    response = login(client, "lou", PASSWORD, "small")  # even the right password
    body = assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "locked_out")
    assert 1 <= int(response["Retry-After"]) <= 120
    assert body["retryAfter"] == int(response["Retry-After"])


def test_unknown_username_locks_out_the_same_way(client, tenant_factory):
    tenant_factory("small", password_max_attempts=1)
    assert_error(login(client, "ghost", "x", "small"), HTTPStatus.UNAUTHORIZED, "invalid_credentials")
    assert_error(login(client, "ghost", "x", "small"), HTTPStatus.TOO_MANY_REQUESTS, "locked_out")


def test_login_on_unknown_tenant_is_404(client, db):
    assert_error(login(client, "alice", tenant_id="no-such-tenant"), HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.parametrize("path", ["auth/login", "auth/mfa/verify", "auth/mfa/totp/setup", "auth/mfa/email/send", "auth/token/refresh"])
@pytest.mark.parametrize("body", [{}, {"mfaToken": "x", "code": "123456", "refreshToken": "x.y.z", "username": "alice", "password": "x"},
                                  "{not json"])
def test_an_unknown_tenant_is_404_before_any_other_error_where_the_tenant_is_read_late(client, db, path, body):
    """These views read the tenant with their first row (or need only its id): an unknown
    tenant must still answer 404, not the body's or the token's error."""
    if isinstance(body, str):
        answer = client.post(v2("no-such-tenant", path), body, content_type="application/json")
    else:
        answer = call(client, "post", v2("no-such-tenant", path), body)
    assert_error(answer, HTTPStatus.NOT_FOUND, "not_found")


def test_an_unknown_tenant_is_404_even_when_the_client_is_over_its_limit(client, db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "1/min"}}
    call(client, "post", v2("no-such-tenant", "auth/token/refresh"), {"refreshToken": "x"})
    assert_error(call(client, "post", v2("no-such-tenant", "auth/token/refresh"), {"refreshToken": "x"}), 404, "not_found")


# --- auth/mfa/verify ------------------------------------------------------------------------


def test_verify_app_code_answers_tokens_with_mfa(client, totp_user, frozen):
    token = login(client, "tina").json()["mfaToken"]
    response = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()})
    assert response.status_code == HTTPStatus.OK
    access = assert_tokens(response.json(), amr=["pwd", "otp", "mfa"])
    assert access["sub"] == str(totp_user.pk)
    assert "recoveryCodes" not in response.json()
    assert AuditEvent.objects.filter(user=totp_user, kind="login_success").exists()


def test_verify_refuses_replayed_code(client, totp_user, frozen):
    code = code_now()
    token = login(client, "tina").json()["mfaToken"]
    assert call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code}).status_code == HTTPStatus.OK
    token = login(client, "tina").json()["mfaToken"]
    assert_error(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code}),
                 HTTPStatus.UNAUTHORIZED, "code_already_used")
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0  # the code last accepted is not counted (a double submit)


@pytest.fixture
def tina(tenant_factory, user_factory):
    """An app user of tenant ``small``: 3 code attempts, 3 password attempts, 300 s lockout."""
    small = tenant_factory("small", mfa_max_attempts=3, password_max_attempts=3, lockout_seconds=300)
    user = user_factory("tina", tenant=small, mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


TINA_VERIFY = v2("small", "auth/mfa/verify")


def wrong_code() -> str:
    return "000000" if code_now() != "000000" else "111111"


def test_verify_wrong_code_counts_down_then_locks(client, tina, frozen):
    token = login(client, "tina", tenant_id="small").json()["mfaToken"]
    url, wrong = TINA_VERIFY, wrong_code()
    assert assert_error(call(client, "post", url, {"mfaToken": token, "code": wrong}), 401, "invalid_code")["attemptsRemaining"] == 2
    assert assert_error(call(client, "post", url, {"mfaToken": token, "code": "12ab56"}), 401, "invalid_code")["attemptsRemaining"] == 1
    response = call(client, "post", url, {"mfaToken": token, "code": wrong})
    assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "locked_out")
    assert int(response["Retry-After"]) == 300
    # Locked: even the right code is refused, with the time left.
    response = call(client, "post", url, {"mfaToken": token, "code": code_now()})
    assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "locked_out")
    assert AuditEvent.objects.filter(user=tina, kind="lockout").count() == 1


def test_the_right_password_again_does_not_reset_the_code_counter(client, tina, frozen):
    """Whoever has the password must not earn fresh code attempts by signing in again: wrong
    codes count against mfaMaxAttempts across password steps, until a right code (or the end
    of a lockout) resets them."""
    url, wrong = TINA_VERIFY, wrong_code()
    token = login(client, "tina", tenant_id="small").json()["mfaToken"]
    for remaining in (2, 1):
        assert assert_error(call(client, "post", url, {"mfaToken": token, "code": wrong}), 401, "invalid_code")["attemptsRemaining"] == remaining
    token = login(client, "tina", tenant_id="small").json()["mfaToken"]  # the right password, again
    assert_error(call(client, "post", url, {"mfaToken": token, "code": wrong}), HTTPStatus.TOO_MANY_REQUESTS, "locked_out")
    assert_error(login(client, "tina", tenant_id="small"), HTTPStatus.TOO_MANY_REQUESTS, "locked_out")
    tina.refresh_from_db()
    assert (tina.failed_password_count, tina.failed_code_count) == (0, 3)


def test_a_right_code_resets_both_counters(client, tina, frozen):
    url, wrong = TINA_VERIFY, wrong_code()
    assert_error(login(client, "tina", "wrong-password-x", tenant_id="small"), 401, "invalid_credentials")
    token = login(client, "tina", tenant_id="small").json()["mfaToken"]
    assert_error(call(client, "post", url, {"mfaToken": token, "code": wrong}), 401, "invalid_code")
    tina.refresh_from_db()
    assert (tina.failed_password_count, tina.failed_code_count) == (0, 1)
    assert call(client, "post", url, {"mfaToken": token, "code": code_now()}).status_code == 200
    tina.refresh_from_db()
    assert (tina.failed_password_count, tina.failed_code_count, tina.locked_until) == (0, 0, None)


@pytest.mark.parametrize("mfa_token", ["", "garbage", "x" * 2000])
def test_verify_refuses_bad_mfa_token(client, totp_user, mfa_token):
    response = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": mfa_token, "code": "123456"})
    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED)
    assert response.json()["error"] in ("invalid_request", "invalid_mfa_token")
    totp_user.refresh_from_db()
    assert totp_user.failed_code_count == 0


def test_verify_refuses_forged_and_expired_and_foreign_mfa_tokens(client, totp_user, tenant_factory, user_factory, time_machine):
    time_machine.move_to("2030-05-17 12:00:10Z", tick=False)
    token = login(client, "tina").json()["mfaToken"]
    url = v2("acme", "auth/mfa/verify")
    forged = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    assert_error(call(client, "post", url, {"mfaToken": forged, "code": code_now()}), 401, "invalid_mfa_token")
    # Of another tenant: refused on this tenant's URL, and the reverse.
    other = tenant_factory("other")
    user_factory("tina", tenant=other, mfa_method=MfaMethod.TOTP)
    assert_error(call(client, "post", v2("other", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()}), 401, "invalid_mfa_token")
    # Expired after 10 minutes.
    time_machine.shift(timedelta(seconds=settings.MFA_PENDING_SECONDS + 1))
    assert_error(call(client, "post", url, {"mfaToken": token, "code": code_now()}), 401, "invalid_mfa_token")


def test_mfa_token_dies_when_the_password_changes(client, totp_user, frozen):
    from accounts.services import user_set_password

    token = login(client, "tina").json()["mfaToken"]
    user_set_password(user=totp_user, password="another-long-pass-77")
    assert_error(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()}),
                 401, "invalid_mfa_token")


def test_verify_accepts_a_recovery_code_once(client, totp_user):
    from mfa.recovery_codes import recovery_codes_replace

    codes = recovery_codes_replace(user=totp_user)
    token = login(client, "tina").json()["mfaToken"]
    response = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": codes[0]})
    assert_tokens(response.json(), amr=["pwd", "mfa"])
    token = login(client, "tina").json()["mfaToken"]
    assert_error(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": codes[0]}), 401, "code_already_used")
    assert_tokens(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": codes[1]}).json(), amr=["pwd", "mfa"])
    token = login(client, "tina").json()["mfaToken"]
    assert_error(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": codes[0]}), 401, "invalid_code")


def test_an_mfa_token_completes_one_sign_in(client, totp_user, frozen):
    """Issue 15, item 8: the next code with the same mfaToken mints no second token pair."""
    token = login(client, "tina").json()["mfaToken"]
    assert call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()}).status_code == HTTPStatus.OK
    frozen.shift(30)
    assert_error(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()}), 401, "invalid_mfa_token")
    assert OutstandingToken.objects.filter(user=totp_user).count() == 1


# --- auth/mfa/totp/setup --------------------------------------------------------------------


def test_app_setup_then_verify_answers_recovery_codes(client, user_factory, frozen):
    nina = user_factory("nina", mfa_method=MfaMethod.TOTP)
    token = login(client, "nina").json()["mfaToken"]
    response = call(client, "post", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": token})
    assert response.status_code == HTTPStatus.OK
    setup = response.json()
    assert set(setup) == {"secret", "otpauthUri", "qrSvg"}
    assert re.fullmatch(r"[A-Z2-7]{32}", setup["secret"])
    assert setup["otpauthUri"] == (
        f"otpauth://totp/Acme%20Corp:nina?secret={setup['secret']}&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30"
    )
    assert setup["qrSvg"].lstrip().startswith("<svg")
    # The same set-up until confirmed.
    assert call(client, "post", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": token}).json()["secret"] == setup["secret"]
    response = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now(setup["secret"])})
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert_tokens(body, amr=["pwd", "otp", "mfa"])
    assert len(body["recoveryCodes"]) == 10 == RecoveryCode.objects.filter(user=nina).count()
    assert TOTPDevice.objects.get(user=nina).confirmed_at is not None
    # Set up now: the next login asks for a code, not a set-up, and set-up is refused.
    body = login(client, "nina").json()
    assert body["enrollmentRequired"] is False
    assert_error(call(client, "post", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": body["mfaToken"]}),
                 HTTPStatus.CONFLICT, "enrollment_not_allowed")


def test_setup_refused_for_email_user_and_bad_token(client, email_user):
    token = login(client, "emma").json()["mfaToken"]
    assert_error(call(client, "post", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": token}), 409, "enrollment_not_allowed")
    assert_error(call(client, "post", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": "nope"}), 401, "invalid_mfa_token")
    assert not TOTPDevice.objects.exists()


def test_after_admin_reset_setup_gives_a_new_secret(client, totp_user, frozen):
    assert login(client, "tina").json()["enrollmentRequired"] is False
    mfa_reset(user=totp_user)
    body = login(client, "tina").json()
    assert (body["mfaMethod"], body["enrollmentRequired"]) == ("totp", True)
    secret = call(client, "post", v2("acme", "auth/mfa/totp/setup"), {"mfaToken": body["mfaToken"]}).json()["secret"]
    assert secret != FIXED_SECRET
    # The old app's code no longer works.
    assert_error(call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": body["mfaToken"], "code": code_now(FIXED_SECRET)}),
                 401, "invalid_code")


def test_enrolling_user_sets_up_the_app(client, tenant_factory, user_factory, frozen):
    strict = tenant_factory("strict", mfa_required=True)
    nemo = user_factory("nemo", tenant=strict)
    token = login(client, "nemo", tenant_id="strict").json()["mfaToken"]
    secret = call(client, "post", v2("strict", "auth/mfa/totp/setup"), {"mfaToken": token}).json()["secret"]
    body = call(client, "post", v2("strict", "auth/mfa/verify"), {"mfaToken": token, "code": code_now(secret)}).json()
    assert len(body["recoveryCodes"]) == 10
    nemo.refresh_from_db()
    assert nemo.mfa_method == MfaMethod.TOTP


# --- auth/mfa/email/send --------------------------------------------------------------------


def test_email_send_then_verify(client, email_user, frozen):
    token = login(client, "emma").json()["mfaToken"]
    response = call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token})
    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json() == {"sentTo": "e***@example.com", "resendAfter": 60}
    assert mail.outbox[-1].to == ["emma@example.com"]
    response = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": mailed_code()})
    assert_tokens(response.json(), amr=["pwd", "otp", "mfa"])


def test_email_resend_too_soon(client, email_user, frozen):
    token = login(client, "emma").json()["mfaToken"]
    assert call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED
    frozen.shift(timedelta(seconds=20))
    response = call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token})
    body = assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "resend_too_soon")
    assert response["Retry-After"] == "40" and body["retryAfter"] == 40
    assert len(mail.outbox) == 1
    frozen.shift(timedelta(seconds=41))
    assert call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED


def test_email_unavailable_is_503_and_counts_nothing(client, email_user, smtp_server):
    token = login(client, "emma").json()["mfaToken"]
    smtp_server.fail = True
    assert_error(call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token}),
                 HTTPStatus.SERVICE_UNAVAILABLE, "email_unavailable")
    assert not EmailCode.objects.exists()
    email_user.refresh_from_db()
    assert (email_user.failed_code_count, email_user.locked_until) == (0, None)
    smtp_server.fail = False  # and nothing stands in the way of the next try
    assert call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED
    assert len(smtp_server.messages) == 1


def test_email_send_refused_for_app_user(client, totp_user):
    token = login(client, "tina").json()["mfaToken"]
    assert_error(call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": token}), HTTPStatus.CONFLICT, "wrong_mfa_method")
    assert not mail.outbox


def test_email_send_refuses_bad_mfa_token(client, email_user):
    assert_error(call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": "nope"}), 401, "invalid_mfa_token")
    assert not mail.outbox


def test_enrolling_user_chooses_email_with_send(client, tenant_factory, user_factory, frozen):
    strict = tenant_factory("strict", mfa_required=True)
    nemo = user_factory("nemo", tenant=strict)
    token = login(client, "nemo", tenant_id="strict").json()["mfaToken"]
    # Began the app, then changed their mind: email/send chooses email.
    call(client, "post", v2("strict", "auth/mfa/totp/setup"), {"mfaToken": token})
    assert call(client, "post", v2("strict", "auth/mfa/email/send"), {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED
    assert not TOTPDevice.objects.filter(user=nemo).exists()
    response = call(client, "post", v2("strict", "auth/mfa/verify"), {"mfaToken": token, "code": mailed_code()})
    assert response.status_code == HTTPStatus.OK
    assert "recoveryCodes" not in response.json()
    nemo.refresh_from_db()
    assert nemo.mfa_method == MfaMethod.EMAIL
    assert AuditEvent.objects.filter(user=nemo, kind="factor_setup").count() == 1


def test_enrolling_user_back_to_app_after_email(client, tenant_factory, user_factory, frozen):
    strict = tenant_factory("strict", mfa_required=True)
    nemo = user_factory("nemo", tenant=strict)
    token = login(client, "nemo", tenant_id="strict").json()["mfaToken"]
    call(client, "post", v2("strict", "auth/mfa/email/send"), {"mfaToken": token})
    emailed = mailed_code()
    secret = call(client, "post", v2("strict", "auth/mfa/totp/setup"), {"mfaToken": token}).json()["secret"]
    assert not EmailCode.objects.filter(user=nemo).exists()
    if emailed != code_now(secret):
        assert_error(call(client, "post", v2("strict", "auth/mfa/verify"), {"mfaToken": token, "code": emailed}), 401, "invalid_code")
    response = call(client, "post", v2("strict", "auth/mfa/verify"), {"mfaToken": token, "code": code_now(secret)})
    assert len(response.json()["recoveryCodes"]) == 10
    nemo.refresh_from_db()
    assert nemo.mfa_method == MfaMethod.TOTP


# --- auth/token/refresh and auth/logout -----------------------------------------------------


def test_refresh_rotates(client, user):
    pair = login(client, "alice").json()
    response = call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]})
    assert response.status_code == HTTPStatus.OK
    new = response.json()
    assert_tokens(new, amr=["pwd"])
    assert new["refreshToken"] != pair["refreshToken"]
    newer = call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": new["refreshToken"]})
    assert newer.status_code == HTTPStatus.OK  # the new one works (once)
    # The old one stopped working; presenting it again ends its whole chain, the newer tokens too (OWASP).
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}), 401, "invalid_token")
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": newer.json()["refreshToken"]}), 401, "invalid_token")
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.REFRESH_TOKEN_REUSED).count() == 1
    # Another sign-in's chain is not touched.
    other = login(client, "alice").json()
    assert call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": other["refreshToken"]}).status_code == HTTPStatus.OK


def test_a_chain_ends_refresh_token_max_seconds_after_its_sign_in(client, user, settings):
    """A chain refreshed often still ends REFRESH_TOKEN_MAX_SECONDS after the sign-in that
    began it (``auth_time``): each refresh token expires no later than that."""
    import time_machine

    settings.REFRESH_TOKEN_MAX_SECONDS = 3 * 3600
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        pair = login(client, "alice").json()
        for _ in range(2):
            clock.shift(3600)
            response = call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]})
            assert response.status_code == HTTPStatus.OK
            pair = response.json()
        claims = jwt.decode(pair["refreshToken"], options={"verify_signature": False})
        assert claims["auth_time"] == int(start.timestamp()) and claims["exp"] <= int(start.timestamp()) + 3 * 3600
        clock.shift(3600 + 1)
        assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}), 401, "invalid_token")


def test_refresh_keeps_amr_and_updates_admin(client, totp_user, frozen):
    token = login(client, "tina").json()["mfaToken"]
    pair = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()}).json()
    User.objects.filter(pk=totp_user.pk).update(is_tenant_admin=True)
    new = call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}).json()
    access = assert_tokens(new, amr=["pwd", "otp", "mfa"])
    assert access["admin"] is True


def test_refresh_refuses_access_token_forged_and_foreign(client, user, tenant_factory, user_factory):
    pair = login(client, "alice").json()
    url = v2("acme", "auth/token/refresh")
    assert_error(call(client, "post", url, {"refreshToken": pair["accessToken"]}), 401, "invalid_token")
    assert_error(call(client, "post", url, {"refreshToken": pair["refreshToken"][:-2] + "xx"}), 401, "invalid_token")
    forged = jwt_sign(tenant_id="acme", claims={**claims(pair["refreshToken"]), "jti": "0" * 32})
    assert_error(call(client, "post", url, {"refreshToken": forged}), 401, "invalid_token")  # never issued
    tenant_factory("other")
    user_factory("alice", tenant=tenant_factory("third"))
    assert_error(call(client, "post", v2("other", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}), 401, "invalid_token")
    # Refused elsewhere, still good at home.
    assert call(client, "post", url, {"refreshToken": pair["refreshToken"]}).status_code == HTTPStatus.OK


def test_refresh_refused_for_deleted_or_inactive_user(client, user_factory):
    gone = user_factory("gone")
    off = user_factory("off")
    pair_gone = login(client, "gone").json()
    pair_off = login(client, "off").json()
    User.objects.filter(pk=off.pk).update(is_active=False)
    gone.delete()
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair_gone["refreshToken"]}), 401, "invalid_token")
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair_off["refreshToken"]}), 401, "invalid_token")


def test_refresh_refused_after_mfa_reset(client, totp_user, frozen):
    token = login(client, "tina").json()["mfaToken"]
    pair = call(client, "post", v2("acme", "auth/mfa/verify"), {"mfaToken": token, "code": code_now()}).json()
    mfa_reset(user=totp_user)
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}), 401, "invalid_token")


def test_logout_revokes_refresh_token(client, user):
    pair = login(client, "alice").json()
    response = call(client, "post", v2("acme", "auth/logout"), {"refreshToken": pair["refreshToken"]})
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert response.content == b""
    assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": pair["refreshToken"]}), 401, "invalid_token")
    assert_error(call(client, "post", v2("acme", "auth/logout"), {"refreshToken": pair["refreshToken"]}), 401, "invalid_token")
    assert AuditEvent.objects.filter(user=user, kind="logout", channel="api").count() == 1


def test_logout_refuses_garbage(client, user):
    assert_error(call(client, "post", v2("acme", "auth/logout"), {"refreshToken": "not-a-jwt"}), 401, "invalid_token")
    assert_error(call(client, "post", v2("acme", "auth/logout"), {}), 400, "invalid_request")


# --- throttling -----------------------------------------------------------------------------


def test_auth_endpoints_are_rate_limited_per_ip(client, user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "3/min"}}
    for _ in range(2):
        assert login(client, "alice").status_code == HTTPStatus.OK
    assert_error(call(client, "post", v2("acme", "auth/mfa/email/send"), {"mfaToken": "x"}), 401, "invalid_mfa_token")
    response = login(client, "alice")
    assert_error(response, HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 61  # a window and one bucket (accounts.ratelimit)
    # Another address has its own budget.
    other = call(client, "post", v2("acme", "auth/login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert other.status_code == HTTPStatus.OK


def test_refresh_and_logout_do_not_spend_the_sign_in_budget(client, user, settings):
    """A refresh token is a signed, single-use credential: nothing to guess, so no per-IP
    limit. Many users behind one address (a NAT, a backend refreshing for its users) keep
    their tokens fresh without using up that address's sign-in attempts."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "2/min"}}
    tokens = login(client, "alice").json()
    for _ in range(3):
        tokens = call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": tokens["refreshToken"]}).json()
        assert_error(call(client, "post", v2("acme", "auth/token/refresh"), {"refreshToken": "x"}), 401, "invalid_token")
    assert call(client, "post", v2("acme", "auth/logout"), {"refreshToken": tokens["refreshToken"]}).status_code == HTTPStatus.NO_CONTENT
    assert login(client, "alice").status_code == HTTPStatus.OK  # the second of two
    assert_error(login(client, "alice"), HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")


def test_rate_limit_does_not_touch_admin_calls(client, admin, admin_token, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "1/min"}}
    for _ in range(3):
        assert call(client, "get", v2("acme", "Settings"), token=admin_token).status_code == HTTPStatus.OK


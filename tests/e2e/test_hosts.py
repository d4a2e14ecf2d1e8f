"""Several hosts: two gunicorn instances (A, B) over one PostgreSQL and one Redis share every
security state: used codes, failure counts and revoked tokens."""
from http import HTTPStatus

import pytest

from tests.e2e.conftest import Api, error_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def hosts(cluster_stack, used_secrets):
    a, b = (Api(s.url, "hosts", used_secrets) for s in cluster_stack.servers)
    yield a, b
    a.close()
    b.close()


def test_an_emailed_code_used_on_one_host_is_refused_on_the_other(hosts, mailbox):
    a, b = hosts
    token = a.login("codeuse")["mfaToken"]
    assert a.post("auth/mfa/email/send", {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED
    code = mailbox.code_for("codeuse@example.com")
    assert a.post("auth/mfa/verify", {"mfaToken": token, "code": code}).status_code == HTTPStatus.OK
    again = b.login("codeuse")["mfaToken"]
    assert error_of(b.post("auth/mfa/verify", {"mfaToken": again, "code": code})) == "code_already_used"


def test_an_app_code_used_on_one_host_is_refused_on_the_other(hosts):
    a, b = hosts
    _, code = a.enroll_totp("replay")
    assert a.post("auth/mfa/verify", {"mfaToken": a.login("replay")["mfaToken"], "code": code}).status_code == HTTPStatus.OK
    assert error_of(b.post("auth/mfa/verify", {"mfaToken": b.login("replay")["mfaToken"], "code": code})) == "code_already_used"


def test_failures_on_both_hosts_add_up_to_one_lockout(hosts, cluster_stack):
    """passwordMaxAttempts=4: two wrong passwords on A and two on B lock the account on both."""
    a, b = hosts
    answers = [api.post("auth/login", {"username": "sumfail", "password": "wrong-password-1"}) for api in (a, b, a, b)]
    assert [error_of(r) for r in answers] == ["invalid_credentials"] * 4
    assert cluster_stack.db.scalar(
        "SELECT failed_password_count FROM accounts_user WHERE tenant_id='hosts' AND username='sumfail'") == 4
    for api in (a, b):
        locked = api.post("auth/login", {"username": "sumfail", "password": "e2e-Str0ng-passphrase-17"})
        assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS and error_of(locked) == "locked_out"
        assert 0 < int(locked.headers["retry-after"]) <= 600


def test_a_refresh_token_revoked_on_one_host_is_dead_on_the_other(hosts):
    a, b = hosts
    tokens = a.login("revoke")
    assert b.post("auth/logout", {"refreshToken": tokens["refreshToken"]}).status_code == HTTPStatus.NO_CONTENT
    for api in (a, b):
        assert error_of(api.post("auth/token/refresh", {"refreshToken": tokens["refreshToken"]})) == "invalid_token"


def test_the_rate_limit_lives_in_the_shared_redis(hosts, cluster_stack):
    """The per-IP throttle of the sign-in calls is kept in Redis, so every host counts into one budget."""
    a, _ = hosts
    a.post("auth/login", {"username": "nobody", "password": "x"})
    assert "throttle_auth" in cluster_stack.redis.cli("--scan", "--pattern", "*throttle*")

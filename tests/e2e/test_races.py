"""Races on PostgreSQL (our own cluster), over real HTTP, spread across two gunicorn hosts:
the limit holds, a code counts once, one mail per resend gap (refresh-token races:
test_revocation_races.py)."""
import time
from http import HTTPStatus

import pytest

from tests.e2e.conftest import Api, error_of, parallel

pytestmark = pytest.mark.e2e


@pytest.fixture
def apis(cluster_stack, used_secrets):
    """One API client per host (A, B) for the ``race`` tenant."""
    clients = [Api(s.url, "race", used_secrets) for s in cluster_stack.servers]
    yield clients
    for c in clients:
        c.close()


def test_forty_parallel_wrong_codes_judge_at_most_the_limit(apis, cluster_stack, mailbox):
    """mfaMaxAttempts=3: of 40 wrong codes sent at once, at most 3 are judged (NIST 800-63B
    §5.2.2); the rest are refused as locked_out without being judged."""
    a, b = apis
    token = a.login("wrong40")["mfaToken"]
    assert a.post("auth/mfa/email/send", {"mfaToken": token}).status_code == HTTPStatus.ACCEPTED
    real = mailbox.code_for("wrong40@example.com")
    wrong = [f"{n:06d}" for n in range(100000, 100100) if f"{n:06d}" != real][:40]
    answers = parallel([lambda c=c, api=(a, b)[i % 2]: api.post("auth/mfa/verify", {"mfaToken": token, "code": c})
                        for i, c in enumerate(wrong)])
    errors = [error_of(r) for r in answers]
    assert set(errors) <= {"invalid_code", "locked_out"}, errors
    assert errors.count("invalid_code") <= 3
    assert {r.status_code for r in answers if error_of(r) == "locked_out"} == {HTTPStatus.TOO_MANY_REQUESTS}
    assert all(r.headers.get("retry-after") for r in answers if r.status_code == HTTPStatus.TOO_MANY_REQUESTS)
    failed, locked = cluster_stack.db.query(
        "SELECT failed_code_count, locked_until IS NOT NULL FROM accounts_user WHERE tenant_id='race' AND username='wrong40'")[0]
    assert (failed, locked) == (3, True)
    # Locked: even the right code is refused now.
    assert error_of(a.post("auth/mfa/verify", {"mfaToken": token, "code": real})) == "locked_out"


def test_one_valid_code_in_twelve_parallel_sign_ins_is_accepted_once(apis):
    """RFC 6238 §5.2 / RFC 4226 §7.2: a code (time step) is accepted once, even when the same
    code arrives in 12 sign-ins at the same moment on two hosts."""
    a, b = apis
    _, code = a.enroll_totp("valid12")
    tokens = [(a, b)[i % 2].login("valid12")["mfaToken"] for i in range(12)]
    answers = parallel([lambda t=t, api=(a, b)[i % 2]: api.post("auth/mfa/verify", {"mfaToken": t, "code": code})
                        for i, t in enumerate(tokens)])
    accepted = [r for r in answers if r.status_code == HTTPStatus.OK]
    assert len(accepted) == 1, [r.status_code for r in answers]
    # The others: their pending sign-in ended with the one that completed (invalid_mfa_token),
    # or, judged before that, the code was already used; none is counted as a failure.
    assert {error_of(r) for r in answers if r.status_code != HTTPStatus.OK} <= {"invalid_mfa_token", "code_already_used"}
    assert set(accepted[0].json()) >= {"accessToken", "refreshToken", "tokenType", "expiresIn"}


def test_parallel_send_code_requests_send_one_mail(apis, cluster_stack, mailbox):
    a, b = apis
    token = a.login("mail8")["mfaToken"]
    answers = parallel([lambda api=(a, b)[i % 2]: api.post("auth/mfa/email/send", {"mfaToken": token}) for i in range(8)])
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [HTTPStatus.ACCEPTED] + [HTTPStatus.TOO_MANY_REQUESTS] * 7, statuses
    assert {error_of(r) for r in answers if r.status_code != HTTPStatus.ACCEPTED} == {"resend_too_soon"}
    mailbox.wait_for("mail8@example.com", 1)
    time.sleep(1)  # a second mail, if one were on its way, would have arrived
    assert len(mailbox.to("mail8@example.com")) == 1
    user = cluster_stack.db.user_id("race", "mail8")
    assert cluster_stack.db.scalar("SELECT count(*) FROM mfa_emailcode WHERE user_id = ?", (user,)) == 1

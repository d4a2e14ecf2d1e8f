"""Races found by the outside attack review (issue 15), replayed over real HTTP against two
gunicorn hosts on PostgreSQL (our own cluster), each for enough rounds that the old code
failed them with near certainty, each asserting zero survivors:
- a refresh loop racing an admin's password change or MFA reset keeps no working chain;
- parallel correct passwords never leave the account locked;
- parallel app set-up calls all answer the one secret that is stored."""
import random
import threading
import time
from http import HTTPStatus

import pytest

from tests.e2e.conftest import PASSWORD, Api, error_of, oathtool, parallel

pytestmark = pytest.mark.e2e
ROUNDS = 20


@pytest.fixture
def race_apis(cluster_stack, used_secrets):
    clients = [Api(s.url, "race", used_secrets) for s in cluster_stack.servers]
    yield clients
    for c in clients:
        c.close()


class RefreshLoop:
    """Refreshes one chain as fast as it can (a thief holding a stolen refresh token), on both
    hosts in turn, until stopped; every answer is kept with when it was asked and answered."""

    def __init__(self, apis, refresh: str):
        self.apis = apis
        self.refresh = refresh
        self.held = [refresh]  # every refresh token the loop ever held
        self.answers: list[tuple[float, float, int]] = []  # asked, answered, status
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 2000:
            asked = time.monotonic()
            answer = self.apis[n % 2].post("auth/token/refresh", {"refreshToken": self.refresh})
            self.answers.append((asked, time.monotonic(), answer.status_code))
            if answer.status_code == HTTPStatus.OK:
                self.refresh = answer.json()["refreshToken"]
                self.held.append(self.refresh)
            n += 1


def test_no_refresh_chain_survives_a_racing_password_change_or_mfa_reset(race_apis, cluster_stack):
    a, b = race_apis
    uid = cluster_stack.db.user_id("race", "revokee")
    admin = {"Authorization": f"Bearer {a.login('boss')['accessToken']}"}
    password = PASSWORD
    survivors = []
    for round_ in range(ROUNDS):
        loop = RefreshLoop(race_apis, a.login("revokee", password)["refreshToken"])
        loop.thread.start()
        deadline = time.monotonic() + 10
        while len(loop.held) < 2 and time.monotonic() < deadline:  # the loop is under way
            time.sleep(0.002)
        time.sleep(random.uniform(0, 0.05))
        if round_ % 2:
            change = {"resetTOTP": True}
        else:
            password = f"{PASSWORD}-{round_}"
            change = {"password": password}
        answer = b.http.patch(f"Users/{uid}", json=change, headers=admin)
        assert answer.status_code == HTTPStatus.OK, answer.text
        answered = time.monotonic()
        time.sleep(0.2)  # the loop goes on after the admin's answer
        loop.stop.set()
        loop.thread.join(timeout=60)
        assert any(status == HTTPStatus.OK for _, done, status in loop.answers if done < answered), "the loop never ran before the change"
        late = [status for asked, _, status in loop.answers if asked > answered]
        assert late and set(late) == {HTTPStatus.UNAUTHORIZED}, late
        alive = [t for t in loop.held if a.post("auth/token/refresh", {"refreshToken": t}).status_code == HTTPStatus.OK]
        survivors.append(len(alive))
    assert survivors == [0] * ROUNDS


def test_a_reused_refresh_token_ends_its_chain_on_both_hosts(race_apis):
    """Eight parallel refreshes of one token: one rotates; the others present a used token,
    which ends the chain (OWASP refresh-token reuse detection), so the winner's new token
    is dead too."""
    a, b = race_apis
    first = a.login("refresh8")["refreshToken"]
    answers = parallel([lambda api=(a, b)[i % 2]: api.post("auth/token/refresh", {"refreshToken": first}) for i in range(8)])
    winners = [r for r in answers if r.status_code == HTTPStatus.OK]
    assert len(winners) == 1, [r.status_code for r in answers]
    assert {error_of(r) for r in answers if r.status_code != HTTPStatus.OK} == {"invalid_token"}
    assert error_of(b.post("auth/token/refresh", {"refreshToken": winners[0].json()["refreshToken"]})) == "invalid_token"
    assert a.post("auth/token/refresh", {"refreshToken": a.login("refresh8")["refreshToken"]}).status_code == HTTPStatus.OK


def test_parallel_correct_passwords_never_leave_the_account_locked(cluster_stack, used_secrets):
    """passwordMaxAttempts=4: two wrong passwords, then four right ones at once on two hosts,
    for twelve users. Every right password signs in, and no account is left locked."""
    a, b = (Api(s.url, "hosts", used_secrets) for s in cluster_stack.servers)
    try:
        for i in range(12):
            name = f"par{i}"
            for _ in range(2):
                assert error_of(a.post("auth/login", {"username": name, "password": "wrong-password-1"})) == "invalid_credentials"
            answers = parallel([lambda api=(a, b)[k % 2]: api.post("auth/login", {"username": name, "password": PASSWORD})
                                for k in range(4)])
            assert [r.status_code for r in answers] == [HTTPStatus.OK] * 4, [r.text[:120] for r in answers]
        rows = cluster_stack.db.query(
            "SELECT username, failed_password_count, locked_until FROM accounts_user WHERE tenant_id = 'hosts' AND left(username, 3) = 'par'"
        )
        assert len(rows) == 12 and all(row[1:] == (0, None) for row in rows), rows
    finally:
        a.close()
        b.close()


def test_parallel_app_set_up_calls_answer_the_one_stored_secret(race_apis):
    """Ten set-up calls at once, on two hosts, for four users: every answer holds the same
    secret, and a code of that secret finishes the set-up."""
    a, b = race_apis
    for i in range(4):
        token = a.login(f"setup{i}")["mfaToken"]
        answers = parallel([lambda api=(a, b)[k % 2]: api.post("auth/mfa/totp/setup", {"mfaToken": token}) for k in range(10)])
        assert [r.status_code for r in answers] == [HTTPStatus.OK] * 10
        secrets = {r.json()["secret"] for r in answers}
        assert len(secrets) == 1, secrets
        code = oathtool(secrets.pop())[0]
        done = b.post("auth/mfa/verify", {"mfaToken": token, "code": code})
        assert done.status_code == HTTPStatus.OK and len(done.json()["recoveryCodes"]) == 10, done.text

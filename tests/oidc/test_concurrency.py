"""The OpenID Provider's refresh tokens and a revocation racing them (contract: "Revocation is
complete: no refresh token of that user works afterwards, including one minted by a refresh
that raced with the change"), on PostgreSQL with real connections."""
import threading
import time
from http import HTTPStatus

import pytest
from django.db import connection, transaction
from django.test import Client
from oauth2_provider.models import get_refresh_token_model

from accounts.tokens import refresh_tokens_revoke
from tests.oidc.helpers import exchange
from tests.oidc.test_provider import full_sign_in, rp  # noqa: F401 — the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_a_refresh_racing_an_mfa_reset_mints_nothing_that_survives(postgres, client, tenant, totp_user, rp):  # noqa: F811
    verifier, code = full_sign_in(client, "acme", rp)
    tokens = exchange(client, "acme", rp.client_id, code, verifier).json()
    revoking = threading.Event()
    answers = []

    def reset():
        try:
            with transaction.atomic():  # the reset holds the user's row lock until it commits
                refresh_tokens_revoke(user=totp_user)
                revoking.set()
                time.sleep(0.5)
        finally:
            connection.close()

    def refresh():
        try:
            assert revoking.wait(10)
            answers.append(Client().post("/tenant/acme/oauth/token/", {
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": rp.client_id,
            }))
        finally:
            connection.close()

    threads = [threading.Thread(target=reset), threading.Thread(target=refresh)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (answer,) = answers
    assert answer.status_code == HTTPStatus.BAD_REQUEST and answer.json()["error"] == "invalid_grant"
    assert not get_refresh_token_model().objects.filter(user=totp_user, revoked__isnull=True).exists()

"""One reset link used many times at once, on a real database (PostgreSQL), threads with their
own connections: exactly one use sets a password; one forgot request per account per gap."""
from collections import Counter

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from accounts.audit import RequestContext
from accounts.models import AuditEvent, User
from accounts.passwords import reset_token_make
from accounts.services import password_reset, password_reset_send
from tests.conftest import in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

THREADS = 10


def test_parallel_uses_of_one_link_set_the_password_once(postgres, tenant, user):
    token = reset_token_make(user)
    passwords = iter([f"Parallel-Pass-Number-{i:02d}" for i in range(THREADS)])
    outcomes = in_parallel(THREADS, lambda: password_reset(tenant=tenant, token=token, new_password=next(passwords)))
    assert outcomes == Counter({"ok": 1, "invalid_token": THREADS - 1})
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.PASSWORD_RESET).count() == 1


def test_parallel_reset_mails_for_one_account_claim_the_gap_once(postgres, tenant, user):
    ctx = RequestContext(ip="203.0.113.9", channel="web")
    sent = []

    def send():
        try:
            sent.append(password_reset_send(user=User.objects.select_related("tenant").get(pk=user.pk),
                                            link_base="http://testserver/", ctx=ctx, gap=60))
        finally:
            connection.close()

    in_parallel(THREADS, send)
    assert sorted(sent) == [False] * (THREADS - 1) + [True]
    assert DBTaskResult.objects.count() == 1

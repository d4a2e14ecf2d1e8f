"""Security notices leave through the durable queue (django-tasks, database backend): queued
in the event's transaction, sent by the worker, retried when the mail server fails, sent
again when a worker died in the middle, dropped quietly when the user is gone."""
import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from accounts.models import MfaMethod
from accounts.notifications import (
    MAX_ATTEMPTS, notices_requeue_stale, notify_user, retry_delay, send_notice, stale_claim_seconds,
)
from tests.conftest import run_notices

NOTICES = [
    ("locked", {"seconds": 600}, "Acme Corp: your account is locked for now", "so it is locked for 10 minutes"),
    ("factor_setup", {"method": MfaMethod.TOTP.label}, "Acme Corp: a second factor was set up on your account",
     "your Acme Corp account: Authenticator app"),
    ("mfa_reset", {}, "Acme Corp: the second factor of your account was reset", "An administrator of Acme Corp reset"),
    ("password_changed", {}, "Acme Corp: the password of your account was changed",
     "The password of your Acme Corp account was just changed"),
]


def notice_rows():
    return DBTaskResult.objects.filter(task_path=send_notice.module_path)


@pytest.mark.parametrize(("kind", "context", "subject", "phrase"), NOTICES, ids=[n[0] for n in NOTICES])
def test_the_task_sends_the_notice_from_its_templates(user, kind, context, subject, phrase):
    assert notify_user(user=user, kind=kind, **context) is True
    assert not mail.outbox  # queued, not sent by the caller
    assert run_notices() == 1
    [message] = mail.outbox
    assert (message.to, message.subject) == (["alice@example.com"], subject)
    assert phrase in message.body and "Hello alice" in message.body
    assert notice_rows().get().return_value == "sent"


def test_the_task_row_is_written_in_the_callers_transaction_and_rolled_back_with_it(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        notify_user(user=user, kind="locked", seconds=60)
        assert notice_rows().filter(status=TaskResultStatus.READY).count() == 1  # written now, not on commit
        raise RuntimeError("the event fails after the notice was queued")
    assert not notice_rows().exists()
    assert run_notices() == 0 and not mail.outbox


def test_a_committed_notice_survives_a_later_rollback(user):
    with transaction.atomic():
        notify_user(user=user, kind="mfa_reset")
    with pytest.raises(RuntimeError), transaction.atomic():
        notify_user(user=user, kind="locked", seconds=60)
        raise RuntimeError
    assert run_notices() == 1
    assert [m.subject for m in mail.outbox] == ["Acme Corp: the second factor of your account was reset"]


def test_a_user_without_an_address_queues_nothing(user_factory):
    nobody = user_factory("nomail")
    nobody.email = ""
    assert notify_user(user=nobody, kind="mfa_reset") is False
    assert not notice_rows().exists()


def test_a_deleted_users_notice_is_dropped_quietly(user, caplog):
    notify_user(user=user, kind="locked", seconds=60)
    user.delete()
    with caplog.at_level(logging.INFO, logger="accounts"):
        assert run_notices() == 1
    assert not mail.outbox
    row = notice_rows().get()
    assert (row.status, row.return_value) == (TaskResultStatus.SUCCESSFUL, "dropped")
    assert not caplog.records


def test_a_failing_smtp_send_is_sent_on_a_later_run(user, smtp_server, time_machine, caplog):
    time_machine.move_to(timezone.now(), tick=False)
    smtp_server.fail = True  # the server answers 451 to the message
    notify_user(user=user, kind="locked", seconds=600)
    with caplog.at_level(logging.WARNING, logger="accounts.notifications"):
        assert run_notices() == 1
    assert not smtp_server.messages
    first = notice_rows().get(status=TaskResultStatus.SUCCESSFUL)
    retry = notice_rows().get(status=TaskResultStatus.READY)
    assert first.return_value == "retry" and retry.args_kwargs["kwargs"]["attempt"] == 2
    assert retry.run_after == timezone.now() + timedelta(seconds=retry_delay(attempt=1))
    # One line, without the mail's content.
    assert "could not send the locked notice" in caplog.text
    assert "locked for now" not in caplog.text and "10 minutes" not in caplog.text and "alice@" not in caplog.text
    assert run_notices() == 0  # not due yet
    smtp_server.fail = False
    time_machine.shift(timedelta(seconds=retry_delay(attempt=1)))
    assert run_notices() == 1
    [message] = smtp_server.messages
    assert message["To"] == "alice@example.com" and message["Subject"] == "Acme Corp: your account is locked for now"


def test_the_retries_back_off_and_end(user, smtp_server):
    assert [retry_delay(attempt=n) for n in (1, 2, 3)] == [60, 120, 240]
    assert retry_delay(attempt=MAX_ATTEMPTS) == 3600
    smtp_server.fail = True
    send_notice.enqueue(user_id=str(user.pk), tenant_id=user.tenant_id, kind="locked", context={"seconds": 60},
                        attempt=MAX_ATTEMPTS)
    assert run_notices() == 1
    row = notice_rows().get()  # no further try queued
    assert row.return_value == "gave_up"


def test_a_notice_whose_worker_died_mid_send_is_sent_again(user, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    notify_user(user=user, kind="mfa_reset")
    # A worker claims the task (committed, as db_worker does) and is killed before the outcome.
    notice_rows().get().claim("killed-worker")
    assert run_notices() == 0 and not mail.outbox
    # While the dead worker's send could still be live, the claim stands.
    time_machine.shift(timedelta(seconds=stale_claim_seconds() - 1))
    assert notices_requeue_stale() == 0
    time_machine.shift(timedelta(seconds=2))
    assert notices_requeue_stale() == 1
    assert notices_requeue_stale() == 0  # once
    assert run_notices() == 1
    assert [m.subject for m in mail.outbox] == ["Acme Corp: the second factor of your account was reset"]
    row = notice_rows().get()
    assert (row.status, row.worker_ids) == (TaskResultStatus.SUCCESSFUL, ["killed-worker", "tests"])


def test_the_stale_bound_outlasts_every_smtp_step(settings):
    settings.EMAIL_TIMEOUT = 7
    assert stale_claim_seconds() >= 7 * 8  # connect, greeting, EHLO, MAIL, RCPT, DATA, body, QUIT


def test_other_tasks_are_never_requeued(user, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    notify_user(user=user, kind="mfa_reset")
    row = notice_rows().get()
    row.claim("killed-worker")
    DBTaskResult.objects.filter(pk=row.pk).update(task_path="somewhere.else.other_task")
    time_machine.shift(timedelta(seconds=stale_claim_seconds() + 1))
    assert notices_requeue_stale() == 0

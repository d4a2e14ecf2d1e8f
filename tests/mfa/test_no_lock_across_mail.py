"""Issue 15, item 5: a hanging mail server must not hold a user's row. On PostgreSQL, with
threads on their own connections: while a mail is "being sent", another connection takes
the user's row lock without waiting (NOWAIT), which fails if the sender still holds it."""
import threading

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import DatabaseError, connection, transaction

from accounts.models import MfaMethod, User
from mfa.email_codes import email_code_send
from tests.conftest import run_notices
from mfa.setup import mfa_reset

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
PROBES: list[str] = []


def _row_free(user_pk) -> str:
    """From a connection of its own: can the user's row be locked right now?"""
    outcome = []

    def probe():
        try:
            with transaction.atomic():
                User.objects.select_for_update(nowait=True).filter(pk=user_pk).first()
            outcome.append("free")
        except DatabaseError:
            outcome.append("held")
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(timeout=30)
    return outcome[0]


class ProbingBackend(BaseEmailBackend):
    """Sends nothing; for each message, records whether its recipient's row is locked."""

    def send_messages(self, messages):
        for message in messages:
            user = User.objects.get(email=message.to[0])
            PROBES.append(_row_free(user.pk))
        return len(messages)


@pytest.fixture
def probing_mail(settings):
    settings.EMAIL_BACKEND = f"{__name__}.ProbingBackend"
    PROBES.clear()
    return PROBES


def test_an_emailed_code_is_sent_with_no_row_lock_held(postgres, probing_mail, user_factory):
    user = user_factory("mailer", mfa_method=MfaMethod.EMAIL, email="mailer@example.com")
    email_code_send(user=user)
    assert probing_mail == ["free"]


def test_an_mfa_reset_sends_its_notice_outside_the_request_and_its_lock(postgres, probing_mail, user_factory):
    user = user_factory("resetme", mfa_method=MfaMethod.EMAIL, email="resetme@example.com")
    mfa_reset(user=user)
    assert probing_mail == []  # nothing mailed inside the call: the notice is queued
    assert run_notices() == 1
    assert probing_mail == ["free"]
    assert mail.outbox == []  # the probing backend replaced the test outbox

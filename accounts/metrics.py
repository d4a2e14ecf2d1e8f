"""Gatehouse's own Prometheus metrics, in one place: what each counts, and the one function
that counts it. The rules call these explicitly where they decide (no signals), after the
decision is final, so a number moves exactly when the thing happened.

Counters live in prometheus_client's default registry; with ``PROMETHEUS_MULTIPROC_DIR`` set
(gunicorn.conf.py) each process writes its own file and ``/metrics`` adds them up. The queue
of notices is not a counter but a fact of the database, read at scrape time
(``scrape_registry``), so it is the same whichever worker answers the scrape.
"""
import logging
from typing import Literal

from django.db import DatabaseError

from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

Method = Literal["password", "totp", "email", "recovery_code", "none"]
Result = Literal["success", "failure", "locked", "already_used"]

SIGN_IN_STEPS = Counter(
    "gatehouse_sign_in_steps",
    "Passwords and codes judged at sign-in, by the credential (method: password, totp, email, recovery_code; "
    "none: a code for a user without a second factor) "
    "and the verdict (result: success, failure, locked = refused because the account is locked, "
    "already_used = the code last accepted, sent again).",
    ["method", "result"],
)
SIGN_INS = Counter(
    "gatehouse_sign_ins",
    "Sign-ins completed (every required factor passed), by channel (web, api).",
    ["channel"],
)
CODES_SENT = Counter("gatehouse_codes_sent", "Sign-in codes emailed (accepted by the mail server).")
MAIL_FAILURES = Counter(
    "gatehouse_mail_failures",
    "Mails the mail server did not take, by kind (code: a sign-in code, answered 503; notice: a security "
    "notice, to be tried again by the worker).",
    ["kind"],
)
LOCKOUTS = Counter(
    "gatehouse_lockouts",
    "Accounts locked by reaching a limit, by counter (password, code); unknown usernames included.",
    ["counter"],
)
REFRESHES = Counter(
    "gatehouse_token_refreshes",
    "Refresh-token calls, by result (success; invalid; reused = a used token presented again, its chain ended).",
    ["result"],
)


def sign_in_step(*, method: Method, result: Result) -> None:
    SIGN_IN_STEPS.labels(method=method, result=result).inc()


def sign_in_completed(*, channel: str) -> None:
    SIGN_INS.labels(channel=channel or "other").inc()


def code_sent() -> None:
    CODES_SENT.inc()


def mail_failed(*, kind: Literal["code", "notice"]) -> None:
    MAIL_FAILURES.labels(kind=kind).inc()


def lockout(*, counter: Literal["password", "code"]) -> None:
    LOCKOUTS.labels(counter=counter).inc()


def refresh(*, result: Literal["success", "invalid", "reused"]) -> None:
    REFRESHES.labels(result=result).inc()


class NoticeQueueCollector:
    """``gatehouse_notices_queued{state}``: security notices waiting in the django-tasks-db
    table, counted when Prometheus scrapes: ``ready`` (due now), ``scheduled`` (a retry
    waiting for its time), ``running`` (claimed by a worker)."""

    def collect(self):
        try:
            ready = DBTaskResult.objects.ready().count()
            waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY).count()
            running = DBTaskResult.objects.running().count()
        except DatabaseError as exc:  # the database is down: the other metrics are still served
            logger.warning("metrics: the notices' queue cannot be read (%s)", type(exc).__name__)
            return
        family = GaugeMetricFamily("gatehouse_notices_queued", "Security notices waiting to be mailed, by state.",
                                   labels=["state"])
        family.add_metric(["ready"], ready)
        family.add_metric(["scheduled"], max(waiting - ready, 0))
        family.add_metric(["running"], running)
        yield family


def scrape_registry() -> CollectorRegistry:
    """A registry of what is read at scrape time (a fresh one each scrape: nothing is kept)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NoticeQueueCollector())
    return registry

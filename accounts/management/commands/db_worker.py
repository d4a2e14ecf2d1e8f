"""``manage.py db_worker``: django-tasks-db's worker, plus what makes a security notice
never lost (accounts/notifications.py).

Django lets an app listed earlier in INSTALLED_APPS override a command of a later one (as
``staticfiles`` does with ``runserver``); this subclass adds, around the library's own loop:
- a sweeper thread, at start and then every quarter of ``stale_claim_seconds``: notices
  whose worker died in the middle of a send, and "Forgot password?" look-ups whose worker
  died before it queued the reset mails, are made READY again (``SWEPT_TASKS``). At start
  alone is not enough: a worker restarted at once finds its predecessor's claim still young.
- a database outage does not end the worker: one log line, a short wait, and the loop goes
  on (the library's loop would exit with a traceback and leave the queue unserved until
  someone restarts it).
"""
import logging
import threading
import time

from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections
from django_tasks_db.management.commands import db_worker

from accounts.notifications import notices_requeue_stale, send_notice, stale_claim_seconds
from flows.password import forgot_lookup

logger = logging.getLogger("accounts.notifications")

OUTAGE_WAIT_SECONDS = 2
# The queued work that must never be lost, each safe to run again: a notice is sent at least
# once; a look-up run twice queues no second mail within the tenant's resend gap.
SWEPT_TASKS = (send_notice, forgot_lookup)


class Command(db_worker.Command):
    help = "Run the task worker (security notices); notices whose worker died are queued again."

    def handle(self, *args, **options) -> None:
        threading.Thread(target=_sweep_forever, name="notice-sweeper", daemon=True).start()
        while True:
            try:
                return super().handle(*args, **options)
            except (OperationalError, InterfaceError) as exc:
                logger.warning("database unavailable (%s): the worker waits and goes on", type(exc).__name__)
                connections.close_all()
                time.sleep(OUTAGE_WAIT_SECONDS)


def _sweep_forever() -> None:
    """Requeue stale notices for as long as the worker lives (a daemon thread, with its own
    database connection, closed after each sweep). Any database error only skips a sweep:
    a thread that died here would leave dead workers' notices claimed for ever."""
    while True:
        try:
            notices_requeue_stale(tasks=SWEPT_TASKS)
        except DatabaseError as exc:
            logger.warning("could not look for stale notices (%s)", type(exc).__name__)
        finally:
            connection.close()
        time.sleep(max(stale_claim_seconds() / 4, 1))

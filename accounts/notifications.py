"""Security notices by email, sent from a durable queue, never inside the request.

``notify_user`` only writes a task row (django-tasks, database backend) in the caller's
transaction: the notice exists exactly when the event it reports was committed, and the
request takes the same time whether or not a mail will follow (a lockout of an existing
user must look like a lockout of an unknown name). ``manage.py db_worker`` sends it.

Never lost: an SMTP failure re-queues the notice for later (``send_notice``); a worker
killed in the middle of a send leaves its task RUNNING, and ``notices_requeue_stale`` (run
by our ``db_worker``) makes it READY again once no live send can still be under way. So a
notice goes out at least once; twice only if a worker dies after the mail server took the
message and before the task was marked done.

Templates: ``templates/accounts/email/<kind>_subject.txt`` and ``<kind>_message.txt``, and
``<kind>_message.html`` when there is one (sent as the HTML alternative); the context has
``user``, ``tenant`` and whatever the caller adds (``at``, an ISO time, becomes a datetime).
No log line holds a mail's content.

A password reset mail (kind ``password_reset``) is queued without its link: the worker makes
the token when it sends, for the user as they are then, and drops the mail when their state
is no longer the one recorded at the request (``accounts.passwords.reset_state``: the password
was changed meanwhile). So no reset token is ever stored, in the queue or anywhere.
"""
import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from accounts import metrics
from accounts.models import User
from accounts.passwords import reset_state, reset_token_make

logger = logging.getLogger(__name__)

# A failed send is tried again after 1, 2, 4 … minutes (at most an hour apart), this many
# times in all (about six hours): a mail server down for a while loses nothing, an address
# refused for good is not retried for ever.
MAX_ATTEMPTS = 12
FIRST_RETRY_SECONDS = 60
LONGEST_RETRY_SECONDS = 3600
# A send is at most this many SMTP steps (connect, greeting, EHLO, MAIL, RCPT, DATA, body,
# QUIT …), each waiting at most EMAIL_TIMEOUT.
SMTP_STEPS = 10


def render_mail(template_prefix: str, context: dict) -> tuple[str, str]:
    subject = " ".join(render_to_string(f"{template_prefix}_subject.txt", context).split())
    body = render_to_string(f"{template_prefix}_message.txt", context)
    return subject, body


def render_html(template_prefix: str, context: dict) -> str | None:
    """The HTML alternative of a mail, when the kind has one."""
    try:
        return render_to_string(f"{template_prefix}_message.html", context)
    except TemplateDoesNotExist:
        return None


def _live_context(user: User, kind: str, context: dict) -> dict | None:
    """What a notice needs that is made when it is sent: the reset link (None: drop the mail,
    the user's state changed since the request), and ``at`` as a datetime."""
    live = dict(context)
    if isinstance(live.get("at"), str):
        live["at"] = parse_datetime(live["at"])
    if kind == "password_reset":
        if not constant_time_compare(str(context.get("reset_state", "")), reset_state(user)):
            return None
        path = reverse("accounts:password-reset", kwargs={"tenant_id": user.tenant_id, "token": reset_token_make(user)})
        live["reset_url"] = str(context.get("link_base", "")).rstrip("/") + path
        live["ttl_minutes"] = max(user.tenant.password_reset_ttl_seconds // 60, 1)
    return live


def notify_user(*, user, kind: str, **context) -> bool:
    """Queue the notice ``kind`` (``locked``, ``factor_setup``, ``mfa_reset``,
    ``password_changed``, ``password_reset``, ``password_reset_done``,
    ``password_change_done``) for ``user``; True when queued (the user has an address).

    Call it inside the transaction that records the event: the task row is written at once,
    in that transaction, so it is committed or rolled back with the event. ``context`` must
    be JSON values (a lazy translation is turned into its text now).
    """
    if not user.email:
        return False
    with translation.override(user.tenant.default_language):  # notices speak the tenant's language
        values = {key: str(value) if isinstance(value, Promise) else value for key, value in context.items()}
    send_notice.enqueue(user_id=str(user.pk), tenant_id=user.tenant_id, kind=kind, context=values)
    return True


@task()
def send_notice(*, user_id: str, tenant_id: str, kind: str, context: dict, attempt: int = 1) -> str:
    """Render and send one notice; run by the worker. Answers what happened ("sent",
    "dropped", "retry", "gave_up").

    A user deleted since, or left without an address, is dropped quietly: there is nobody
    to tell. A mail server that refuses or cannot be reached does not fail the task (its
    error would be stored and logged with a traceback): the notice is queued again for
    later, with its own attempt count, and one line without the mail's content is logged.
    """
    user = User.objects.select_related("tenant").filter(tenant_id=tenant_id, pk=user_id).first()
    if user is None or not user.email:
        return "dropped"
    # Sent outside any request: in the tenant's default language (the pages follow the browser).
    with translation.override(user.tenant.default_language):
        live = _live_context(user, kind, context)
        if live is None:
            return "dropped"
        values = {"user": user, "tenant": user.tenant, **live}
        subject, body = render_mail(f"accounts/email/{kind}", values)
        html = render_html(f"accounts/email/{kind}", values)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email], html_message=html)
    except (smtplib.SMTPException, OSError) as exc:
        metrics.mail_failed(kind="notice")
        if attempt >= MAX_ATTEMPTS:
            logger.error("gave up the %s notice to user %s after %s attempts (%s)", kind, user_id, attempt, type(exc).__name__)
            return "gave_up"
        retry_at = timezone.now() + timedelta(seconds=retry_delay(attempt=attempt))
        send_notice.using(run_after=retry_at).enqueue(
            user_id=user_id, tenant_id=tenant_id, kind=kind, context=context, attempt=attempt + 1
        )
        logger.warning("could not send the %s notice to user %s (%s); trying again at %s",
                       kind, user_id, type(exc).__name__, retry_at.isoformat(timespec="seconds"))
        return "retry"
    return "sent"


def retry_delay(*, attempt: int) -> int:
    """Seconds before the try after failed try number ``attempt`` (exponential, capped)."""
    return min(FIRST_RETRY_SECONDS * 2 ** (attempt - 1), LONGEST_RETRY_SECONDS)


def stale_claim_seconds() -> int:
    """How long a notice may stay RUNNING before its worker is taken for dead: longer than
    any send a live worker can still be in (every SMTP step is bounded by EMAIL_TIMEOUT)."""
    return SMTP_STEPS * settings.EMAIL_TIMEOUT


def notices_requeue_stale(*, tasks=(send_notice,), now: datetime | None = None) -> int:
    """Make READY again every task of ``tasks`` (notices, and whatever else must never be
    lost and is safe to run twice) claimed longer ago than ``stale_claim_seconds``: its worker
    died (killed, host lost) between claiming it and recording the outcome. Answers how many.
    One conditional UPDATE, so two sweepers never requeue one task twice; the library's next
    claim appends the new worker to the task's ``worker_ids``."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stale_claim_seconds())
    requeued = (
        DBTaskResult.objects.running()
        .filter(task_path__in=[task.module_path for task in tasks], started_at__lt=cutoff)
        .update(status=TaskResultStatus.READY)
    )
    if requeued:
        logger.warning("requeued %s notice(s) whose worker stopped in the middle", requeued)
    return requeued

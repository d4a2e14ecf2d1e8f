"""Security notices by email, rendered from templates an operator can override.

``templates/accounts/email/<kind>_subject.txt`` and ``<kind>_message.txt``; the context
has ``user``, ``tenant`` and whatever the caller adds. A notice that cannot be sent is
logged (without its content) and does not undo what it reports.
"""
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def render_mail(template_prefix: str, context: dict) -> tuple[str, str]:
    subject = " ".join(render_to_string(f"{template_prefix}_subject.txt", context).split())
    body = render_to_string(f"{template_prefix}_message.txt", context)
    return subject, body


def notify_user(*, user, kind: str, **context) -> bool:
    """Send the notice ``kind`` (``locked``, ``factor_setup``, ``mfa_reset`` …). True when sent."""
    if not user.email:
        return False
    subject, body = render_mail(f"accounts/email/{kind}", {"user": user, "tenant": user.tenant, **context})
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:  # the notice is best effort; the event it reports stands
        logger.warning("could not send %s notice to user %s", kind, user.pk)
        return False
    return True

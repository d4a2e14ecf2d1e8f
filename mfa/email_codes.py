"""Emailed sign-in codes: sent while the user waits, stored only as keyed hashes, at most
``EMAIL_CODES_LIVE`` live per user, the first one used ending them all."""
import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts import metrics
from accounts.errors import EmailUnavailable, ResendTooSoon
from accounts.models import User
from accounts.notifications import render_mail
from mfa import crypto
from mfa.models import EmailCode

logger = logging.getLogger(__name__)

# At most this many emailed codes are live per user: a new send retires the oldest.
EMAIL_CODES_LIVE = 3


def mask_email(email: str) -> str:
    """``alice@example.com`` → ``a***@example.com``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _hash(user: User, code: str) -> str:
    # Bound to the address too: a code mailed before the address changed no longer works.
    return crypto.keyed_hash(f"{user.pk}:{user.email}:{code}", purpose="email-code")


def email_code_send(*, user: User) -> dict:
    """Create and mail a code, honouring the tenant's resend gap across processes.

    The gap is checked and the code stored under the user's row lock, which is released
    before the mail goes out: no lock is held while the mail server answers, however slowly.
    The user is waiting for this code, so it is sent here rather than queued; when it cannot
    be sent, the stored code is taken back and ``EmailUnavailable`` raised (nothing counted,
    so the next try is not "too soon"). At most ``EMAIL_CODES_LIVE`` codes are live: a new
    one retires the oldest. Raises ``ResendTooSoon`` or ``EmailUnavailable``.
    Returns ``{"sentTo", "resendAfter"}``.
    """
    tenant = user.tenant
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        now = timezone.now()
        last = EmailCode.objects.filter(user=user).order_by("-created_at").values_list("created_at", flat=True).first()
        if last is not None and tenant.email_resend_seconds:
            wait = tenant.email_resend_seconds - (now - last).total_seconds()
            if wait > 0:
                raise ResendTooSoon(int(wait + 0.999))
        sent = EmailCode.objects.create(
            user=user,
            code_hash=_hash(user, code),
            created_at=now,
            expires_at=now + timedelta(seconds=tenant.email_code_ttl_seconds),
        )
        live = EmailCode.objects.filter(user=user).order_by("-created_at", "-pk").values_list("pk", flat=True)
        EmailCode.objects.filter(user=user).exclude(pk__in=list(live[:EMAIL_CODES_LIVE])).delete()
    subject, body = render_mail(
        "mfa/email/code",
        {"user": user, "tenant": tenant, "code": code, "sent_at": now, "minutes": max(tenant.email_code_ttl_seconds // 60, 1), "seconds": tenant.email_code_ttl_seconds},
    )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:
        logger.warning("could not email a sign-in code to user %s", user.pk)
        EmailCode.objects.filter(pk=sent.pk).delete()
        metrics.mail_failed(kind="code")
        raise EmailUnavailable() from None
    metrics.code_sent()
    return {"sentTo": mask_email(user.email), "resendAfter": tenant.email_resend_seconds}


def email_code_pending(*, user: User) -> bool:
    """Whether an unexpired code waits for ``user``."""
    return EmailCode.objects.filter(user=user, expires_at__gt=timezone.now()).exists()


def email_code_use(*, user: User, code: str) -> bool:
    """Use an emailed code (six digits, normalized): the first one used ends them all."""
    digest = _hash(user, code)
    matched = False
    for stored in EmailCode.objects.filter(user=user, expires_at__gt=timezone.now()).values_list("code_hash", flat=True):
        matched |= hmac.compare_digest(stored.encode(), digest.encode())
    if matched:
        EmailCode.objects.filter(user=user).delete()
    return matched

"""Remembered browsers ("remember this browser for N days"): after the second factor a
browser gets a cookie (the API: a ``deviceToken``) that lets the next sign-ins on it skip the
second factor. The token is signed (``django.core.signing``) and names the user and a random
secret; the server keeps a keyed hash of the secret, so every remembered browser can be
revoked. One ends when it expires, when the user's security stamp changes (a password change
or an MFA reset), when the user forgets all browsers, or when the tenant turns the feature
off (``rememberDeviceDays`` 0). A forged, stale or foreign token is simply ignored."""
import datetime
import secrets

from django.core import signing
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts import metrics
from accounts.audit import RequestContext, audit_record
from accounts.models import AuditEvent, User
from mfa import crypto
from mfa.models import RememberedBrowser

COOKIE_NAME = "gatehouse_remember"
_SALT = "gatehouse.mfa.remembered-browser"
MAX_DAYS = 90
Kind = AuditEvent.Kind


def _hash(secret: str) -> str:
    return crypto.keyed_hash(secret, purpose="remembered-browser")


def remember_days(user: User) -> int:
    return user.tenant.remember_device_days


def remembered_browser_issue(*, user: User, ctx: RequestContext | None = None) -> str:
    """Remember this browser (or device) for the tenant's ``rememberDeviceDays``; returns the
    token for its cookie or ``deviceToken``. Audited."""
    secret = secrets.token_urlsafe(32)
    RememberedBrowser.objects.create(
        user=user, token_hash=_hash(secret), security_stamp=user.security_stamp,
        user_agent=(ctx.user_agent if ctx else "")[:300],
        expires_at=timezone.now() + datetime.timedelta(days=remember_days(user)),
    )
    audit_record(kind=Kind.BROWSER_REMEMBERED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return signing.dumps({"u": str(user.pk), "s": secret}, salt=_SALT, compress=True)


def remembered_browser_use(*, user: User, token, ctx: RequestContext | None = None) -> bool:
    """Whether ``token`` remembers this browser for ``user`` now; when it does, the use is
    recorded and audited. Anything else (forged, expired, revoked, of another user) is False."""
    if not token or not isinstance(token, str) or len(token) > 1024 or remember_days(user) <= 0:
        return False
    try:
        data = signing.loads(token, salt=_SALT, max_age=datetime.timedelta(days=MAX_DAYS))
        user_id, secret = data["u"], data["s"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return False
    if not isinstance(secret, str) or not constant_time_compare(str(user_id), str(user.pk)):
        return False
    now = timezone.now()
    record = RememberedBrowser.objects.filter(user=user, token_hash=_hash(secret), expires_at__gt=now).first()
    if record is None or not constant_time_compare(record.security_stamp, user.security_stamp):
        return False
    RememberedBrowser.objects.filter(pk=record.pk).update(last_used_at=now)
    audit_record(kind=Kind.REMEMBERED_BROWSER_USED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    metrics.sign_in_step(method="remembered_browser", result="success")
    return True


def remembered_browser_count(*, user: User) -> int:
    return RememberedBrowser.objects.filter(user=user, expires_at__gt=timezone.now(), security_stamp=user.security_stamp).count()


def remembered_browsers_forget(*, user: User, ctx: RequestContext | None = None) -> int:
    """Forget every remembered browser of the user (the account page's button). Audited."""
    forgotten, _by_model = RememberedBrowser.objects.filter(user=user).delete()
    audit_record(kind=Kind.REMEMBERED_BROWSERS_FORGOTTEN, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return forgotten

"""The pending sign-in: the password was right, the second factor is still to come.

It is not a sign-in. In the browser it is a dict in the session under one key; for the
API it is a signed, timestamped ``mfaToken``. Both expire after MFA_PENDING_SECONDS (10
minutes), are bound to one user of one tenant (``User.sign_in_fingerprint``), and end in
``session_sign_in``, which rotates the session key, or in tokens minted by
``accounts.tokens`` (``flows.signin`` decides which).
"""
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.utils.crypto import constant_time_compare

from accounts.models import User
from accounts.selectors import as_uuid, user_get_or_none

SESSION_KEY = "gatehouse_pending"
AMR_SESSION_KEY = "gatehouse_amr"
# When this browser session signed in (epoch seconds): the ID token's auth_time, max_age.
AUTH_TIME_SESSION_KEY = "gatehouse_auth_time"
TOKEN_SALT = "gatehouse.mfa-token"


@dataclass
class Pending:
    user_id: str
    tenant_id: str
    started_at: float
    fingerprint: str  # changes when the password or MFA state changes: stale pendings die
    enroll: str = ""  # "totp" or "email" while setting up a method chosen on the choose page
    email_sent_at: float = 0.0
    email_tried: bool = False  # the code page tried to send (it does not try again by itself)

    @property
    def expired(self) -> bool:
        return time.time() - self.started_at > settings.MFA_PENDING_SECONDS


def _valid_for(pending: Pending | None, user) -> bool:
    """Unexpired and bound to the user's current state (``User.sign_in_fingerprint``: a
    completed sign-in, a password change or an MFA reset ends it). ``code_verify`` checks
    the same again under the user's row lock."""
    return pending is not None and not pending.expired and constant_time_compare(pending.fingerprint, user.sign_in_fingerprint())


# --- the browser -------------------------------------------------------------------------

def session_start(request, user) -> Pending:
    """Begin a pending sign-in in a fresh session (the old key is discarded)."""
    request.session.cycle_key()
    pending = Pending(str(user.pk), user.tenant_id, time.time(), user.sign_in_fingerprint())
    session_save(request, pending)
    return pending


def session_save(request, pending: Pending) -> None:
    request.session[SESSION_KEY] = asdict(pending)


def session_get(request, *, tenant_id: str) -> Pending | None:
    """The live pending sign-in of this tenant, or None (expired ones are dropped)."""
    data = request.session.get(SESSION_KEY)
    try:
        pending = Pending(**data) if data else None
    except TypeError:
        pending = None
    if pending is None or pending.tenant_id != tenant_id or pending.expired:
        if data:
            request.session.pop(SESSION_KEY, None)
        return None
    return pending


def session_user(request, *, tenant):
    """The user of the live pending sign-in, checked against their current state, or None."""
    pending = session_get(request, tenant_id=tenant.id)
    if pending is None:
        return None, None
    user = user_get_or_none(tenant=tenant, user_id=pending.user_id)
    if user is None or not user.is_active or not _valid_for(pending, user):
        request.session.pop(SESSION_KEY, None)
        return None, None
    return pending, user


def session_clear(request) -> None:
    request.session.pop(SESSION_KEY, None)


def session_sign_in(request, user, *, amr: list[str]) -> None:
    """The hand-off: a real sign-in, with a new session key (``login`` cycles it)."""
    session_clear(request)
    login(request, user, backend="accounts.backends.TenantBackend")
    request.session[AMR_SESSION_KEY] = amr
    request.session[AUTH_TIME_SESSION_KEY] = int(time.time())


# --- the API -----------------------------------------------------------------------------

def token_issue(user, *, enroll: str = "") -> str:
    pending = Pending(str(user.pk), user.tenant_id, time.time(), user.sign_in_fingerprint(), enroll)
    return signing.dumps(asdict(pending), salt=TOKEN_SALT, compress=True)


def token_read(token: str, *, tenant_id: str) -> Pending | None:
    """The pending sign-in a token stands for, or None if forged, expired or of another tenant."""
    if not isinstance(token, str) or len(token) > 1024:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=settings.MFA_PENDING_SECONDS)
        pending = Pending(**data)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    return pending if pending.tenant_id == tenant_id else None


def token_user(token: str, *, tenant_id: str):
    """The pending sign-in an mfaToken stands for and its user (with the tenant), checked
    against the user's current state; or (None, None)."""
    pending = token_read(token, tenant_id=tenant_id)
    uid = as_uuid(pending.user_id) if pending is not None else None
    if uid is None:
        return None, None
    user = User.objects.select_related("tenant").filter(pk=uid, tenant_id=tenant_id).first()
    if user is None or not user.is_active or not _valid_for(pending, user):
        return None, None
    return pending, user

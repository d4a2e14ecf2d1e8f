"""Password self-service, for the pages and the API: "Forgot password?", the reset link, and a
signed-in user's change of password. The writes are ``accounts.services``'
(``password_reset_send``, ``password_reset``, ``password_change``); the rules and tokens are
``accounts.passwords``'.

"Forgot password?" answers the same, in the same time, whether or not an account matches,
because the request does the same thing every time: it queues one task
(``forgot_lookup``) with what was typed, who asked and from where. The notice worker looks
the login up (a username, or an email address, of the tenant), applies the per-account limit
(one mail per ``emailResendSeconds``) and queues the mail; nothing of that is seen by, or
slows, the request.
"""
from django.contrib.auth import update_session_auth_hash
from django.utils import timezone
from django_tasks import task

from accounts.audit import RequestContext
from accounts.models import User
from accounts.selectors import normalize_username
from accounts.services import password_change, password_reset, password_reset_send
from tenants.models import Tenant

FORGOT_LOGIN_MAX = 254  # a username (150) or an email address (254)
FORGOT_MATCHES_MAX = 10  # an address shared by more accounts than this mails the first ones


def link_base(request) -> str:
    """Where links in mails point: the scheme and host this request came in on (Django's
    ``build_absolute_uri``; the host is one of ``ALLOWED_HOSTS``)."""
    return request.build_absolute_uri("/")


def forgot(*, request, tenant, login: str, ctx: RequestContext) -> None:
    """A "Forgot password?" request: queue the look-up, whatever was typed."""
    forgot_lookup.enqueue(
        tenant_id=tenant.id,
        login=(login or "")[:FORGOT_LOGIN_MAX],
        ip=ctx.ip or "",
        user_agent=ctx.user_agent,
        channel=ctx.channel,
        at=timezone.now().isoformat(timespec="seconds"),
        link_base=link_base(request),
    )


@task()
def forgot_lookup(*, tenant_id: str, login: str, ip: str, user_agent: str, channel: str, at: str, link_base: str) -> str:
    """Run by the notice worker: the accounts ``login`` names in the tenant (its username, or
    every active account with that email address), each mailed a reset link unless one was
    mailed less than the tenant's ``email_resend_seconds`` ago. Answers how many were queued."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    login = (login or "").strip()
    if tenant is None or not login:
        return "queued 0"
    matches = User.objects.filter(tenant=tenant, is_active=True).exclude(email="")
    if "@" in login:
        matches = matches.filter(email__iexact=login) | matches.filter(username=normalize_username(login))
    else:
        matches = matches.filter(username=normalize_username(login))
    ctx = RequestContext(ip=ip or None, user_agent=user_agent, channel=channel)
    queued = 0
    for user in matches.order_by("created_at")[:FORGOT_MATCHES_MAX]:
        user.tenant = tenant
        queued += password_reset_send(user=user, link_base=link_base, ctx=ctx, gap=tenant.email_resend_seconds)
    return f"queued {queued}"


def reset(*, tenant, token: str, new_password: str, ctx: RequestContext) -> User:
    """A reset link used: the new password is set and nobody is signed in (the person signs in
    with it, and then their second factor, as always)."""
    return password_reset(tenant=tenant, token=token, new_password=new_password, ctx=ctx)


def page_change(request, *, current_password: str, new_password: str) -> User:
    """The account page's change of password: the browser's own session stays signed in (its
    hash follows the new password and stamp), every other one ends."""
    user = password_change(
        user=request.user, current_password=current_password, new_password=new_password,
        ctx=RequestContext.from_request(request, channel="web"),
    )
    update_session_auth_hash(request, user)
    return user


def api_change(*, user: User, current_password: str, new_password: str, ctx: RequestContext, chain=None) -> User:
    """``POST Me/password``: the caller's own refresh-token chain (the access token's
    ``chain``) stays, every other one and every browser session ends."""
    return password_change(user=user, current_password=current_password, new_password=new_password, ctx=ctx, keep_chain=chain)

"""The sign-in flow, for the pages and the API: password → the factor the user needs (set-up
included) → the hand-off to a browser session or to tokens. The password step and the
judging of codes are the domains' (``accounts.services.password_sign_in``,
``mfa.verify.code_verify``); this module decides what comes next and hands off, inside the
transaction that judged the last step where it issues tokens."""
from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.audit import RequestContext
from accounts.models import User
from accounts.services import password_sign_in, sign_in_record, sign_in_tokens_issue
from accounts.tokens import AMR_PASSWORD, AMR_REMEMBERED
from flows import pending as pending_sign_in
from mfa.setup import enrollment_method, enrollment_needed, first_allowed_method
from mfa.remember import COOKIE_NAME as REMEMBER_COOKIE
from mfa.remember import remembered_browser_issue, remembered_browser_use
from mfa.verify import Verified, code_verify
from mfa.webauthn import RelyingParty

NEXT_SESSION_KEY = "gatehouse_next"


def safe_next(request, candidate: str | None) -> str | None:
    """``?next=`` only to a path on this site."""
    if candidate and candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return None


def account_url(tenant_id: str) -> str:
    return reverse("accounts:account", kwargs={"tenant_id": tenant_id})


def relying_party(request, tenant) -> RelyingParty:
    """The WebAuthn relying party of a request: its host (already checked against
    ALLOWED_HOSTS by ``get_host``) and origin (scheme and host), named after the tenant."""
    return RelyingParty.for_host(scheme=request.scheme, host=request.get_host(), name=tenant.effective_issuer)


# --- the pages -------------------------------------------------------------------------------

def page_password_passed(request, tenant, user: User, *, next_url: str | None) -> HttpResponseRedirect:
    """The password was right: a pending sign-in in a fresh session (any earlier sign-in of
    this browser ends), the way on kept, then the next step."""
    pending = pending_sign_in.session_start(request, user)
    request.session.pop(NEXT_SESSION_KEY, None)  # a ?next= of an abandoned sign-in is not this one's
    if next_url:
        request.session[NEXT_SESSION_KEY] = next_url
    ctx = RequestContext.from_request(request, channel="web")
    token = request.COOKIES.get(REMEMBER_COOKIE)
    if token and enrollment_needed(user) == "verify" and remembered_browser_use(user=user, token=token, ctx=ctx):
        # A remembered browser: the second factor was given here before (mfa.remember).
        sign_in_record(user=user, ctx=ctx)
        return page_hand_off(request, tenant, user, amr=AMR_REMEMBERED)
    return page_continue(request, tenant, pending, user)


def page_remember(request, response, user: User) -> None:
    """"Remember this browser": the cookie (signed, HttpOnly, Secure unless SECURE_COOKIES is
    off, only sent to this tenant's pages) and its server-side record."""
    days = user.tenant.remember_device_days
    if days <= 0:
        return
    token = remembered_browser_issue(user=user, ctx=RequestContext.from_request(request, channel="web"))
    response.set_cookie(
        REMEMBER_COOKIE, token, max_age=days * 86400, path=f"/tenant/{user.tenant_id}/",
        secure=settings.SECURE_COOKIES, httponly=True, samesite="Lax",
    )


def page_forget_cookie(response, tenant_id: str) -> None:
    response.delete_cookie(REMEMBER_COOKIE, path=f"/tenant/{tenant_id}/")


def page_continue(request, tenant, pending, user: User) -> HttpResponseRedirect:
    """After a step of the pending sign-in: the next MFA page, or (no factor needed) the
    sign-in itself."""
    step = enrollment_needed(user, enroll=pending.enroll)
    if step:
        return redirect(f"mfa:{step}", tenant_id=tenant.id)
    sign_in_record(user=user, ctx=RequestContext.from_request(request, channel="web"))
    return page_hand_off(request, tenant, user, amr=AMR_PASSWORD)


def page_code(request, pending, user: User, code: str) -> Verified:
    """Judge a code of the browser's pending sign-in; when it is right, the sign-in is
    recorded in the same commit (``code_verify``). Raises the ``AuthFailure`` to show."""
    ctx = RequestContext.from_request(request, channel="web")
    return code_verify(
        user=user, code=code, enroll=pending.enroll, ctx=ctx, fingerprint=pending.fingerprint,
        on_success=lambda _verified: sign_in_record(user=user, ctx=ctx),
    )


def page_passkey(request, pending, user: User, credential, *, name: str = "") -> Verified:
    """Judge a passkey answer (registration or assertion) of the browser's pending sign-in,
    on the same road as a code (``code_verify``). Raises the ``AuthFailure`` to show."""
    ctx = RequestContext.from_request(request, channel="web")
    return code_verify(
        user=user, code="", enroll=pending.enroll, ctx=ctx, fingerprint=pending.fingerprint,
        credential=credential, rp=relying_party(request, user.tenant), passkey_name=name,
        on_success=lambda _verified: sign_in_record(user=user, ctx=ctx),
    )


def page_hand_off(request, tenant, user: User, *, amr: list[str]) -> HttpResponseRedirect:
    """The session hand-off of a recorded sign-in: a new session key, the ``amr`` kept, and
    the way on (a safe ``next`` or the account page)."""
    next_url = request.session.pop(NEXT_SESSION_KEY, None)
    pending_sign_in.session_sign_in(request, user, amr=amr)
    return HttpResponseRedirect(safe_next(request, next_url) or account_url(tenant.id))


# --- the API ---------------------------------------------------------------------------------

def api_password(*, tenant, user: User | None, username: str, password: str, ctx: RequestContext, device_token: str = "") -> dict:
    """The API's password step (``password_sign_in``; ``user``: the one named ``username``,
    read with the tenant, or None) and its answer: tokens when no factor is needed, issued
    inside the password's transaction, else the MFA challenge with an ``mfaToken``. A user
    with no method where the tenant requires one is offered the app and may choose email
    instead (``mfa.setup``'s enrollment choice). A valid ``device_token`` (a remembered
    device, ``mfa.remember``) stands in for the second factor. Raises the ``AuthFailure`` to answer."""
    answer: dict = {}
    password_sign_in(
        tenant=tenant, user=user, username=username, password=password, ctx=ctx,
        on_success=lambda passed: answer.update(_api_password_answer(passed, ctx=ctx, device_token=device_token)),
    )
    return answer


def _api_password_answer(user: User, *, ctx: RequestContext, device_token: str = "") -> dict:
    step = enrollment_needed(user)
    if not step:
        return sign_in_tokens_issue(user=user, amr=AMR_PASSWORD, ctx=ctx)
    if device_token and step == "verify" and remembered_browser_use(user=user, token=device_token, ctx=ctx):
        return sign_in_tokens_issue(user=user, amr=AMR_REMEMBERED, ctx=ctx)
    enroll = first_allowed_method(user.tenant) if step == "choose" else ""
    return {
        "mfaRequired": True,
        "mfaToken": pending_sign_in.token_issue(user, enroll=enroll),
        "mfaMethod": enroll or user.mfa_method,
        "enrollmentRequired": step in ("setup", "choose"),
    }


def api_code(
    pending, user: User, code: str = "", *, ctx: RequestContext, credential=None, rp: RelyingParty | None = None, remember: bool = False
) -> dict:
    """Judge a code (or a passkey answer, ``credential``, with the request's ``rp``) of an API
    sign-in; when it is right, the tokens are issued in the same commit (plus the recovery
    codes when it finished the set-up of the app or of a first passkey)."""
    passkey = credential is not None
    result = code_verify(
        user=user, code=code, enroll=enrollment_method(user=user, enroll=pending.enroll, passkey=passkey), ctx=ctx,
        fingerprint=pending.fingerprint, credential=credential, rp=rp,
        on_success=lambda verified: sign_in_tokens_issue(user=user, amr=verified.amr, ctx=ctx),
    )
    body = result.handoff
    if result.recovery_codes:
        body["recoveryCodes"] = result.recovery_codes
    if remember and user.tenant.remember_device_days > 0:
        body["deviceToken"] = remembered_browser_issue(user=user, ctx=ctx)
    return body

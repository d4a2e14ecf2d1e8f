"""Everything that writes users: creation, changes, and the password step of signing in."""
from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import lockout, metrics
from accounts.audit import RequestContext, audit_record
from accounts.errors import InvalidCredentials, InvalidResetToken, LockedOut
from accounts.models import AuditEvent, MfaMethod, UnknownUsername, User, new_security_stamp
from accounts.notifications import notify_user
from accounts.passwords import password_validate, reset_state, reset_token_user_id, reset_token_valid
from accounts.selectors import sign_in_name, normalize_username, user_get_by_username, user_get_or_none
from accounts.tokens import refresh_tokens_revoke, token_pair_issue
from django.utils.translation import gettext_lazy as _

Kind = AuditEvent.Kind


USERNAME_TAKEN = _("That username is already taken in this tenant.")


def username_taken() -> ValidationError:
    """The one error for a username already used in the tenant (the unique constraint's)."""
    return ValidationError({"username": ValidationError(USERNAME_TAKEN, code="username_taken")})


def _validate_username(username: str) -> str:
    name = normalize_username(username)
    if not name:
        raise ValidationError({"username": ValidationError(_("A username is required."), code="required")})
    if len(name) > 150:
        raise ValidationError({"username": ValidationError(_("At most 150 characters."), code="max_length")})
    try:
        UnicodeUsernameValidator()(name)
    except ValidationError as exc:
        raise ValidationError({"username": exc.error_list}) from None
    return name


def _validate_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": ValidationError(_("Enter a valid email address."), code="invalid")}) from None
    return User.objects.normalize_email(email)


def _method_allowed(tenant, method: str) -> bool:
    """``none`` always; a second factor only when the tenant allows it (``allowedMethods``)."""
    return method == MfaMethod.NONE or tenant.allows(method)


def _method_not_allowed(tenant) -> str:
    return _("This tenant allows only: %(methods)s.") % {"methods": ", ".join(["none", *tenant.allowed_methods])}


def user_create(
    *,
    tenant,
    username: str,
    email: str,
    password: str | None = None,
    mfa_method: str = MfaMethod.NONE,
    is_admin: bool = False,
    is_superuser: bool = False,
    is_active: bool = True,
) -> User:
    """Create a user; every value is checked before anything is written.

    Raises ``ValidationError`` with per-field errors; a taken username has code ``username_taken``.
    """
    errors: dict[str, list] = {}
    for field, check in (("username", lambda: _validate_username(username)), ("email", lambda: _validate_email(email))):
        try:
            check()
        except ValidationError as exc:
            errors.update(exc.message_dict if hasattr(exc, "error_dict") else {field: exc.messages})
    if mfa_method not in MfaMethod.values:
        errors["mfa_method"] = [_("Choose one of: %(methods)s.") % {"methods": ", ".join(MfaMethod.values)}]
    elif not _method_allowed(tenant, mfa_method):
        errors["mfa_method"] = [_method_not_allowed(tenant)]
    if errors:
        raise ValidationError(errors)
    user = User(
        tenant=tenant,
        username=normalize_username(username),
        email=_validate_email(email),
        mfa_method=mfa_method,
        is_tenant_admin=is_admin,
        is_staff=is_admin or is_superuser,
        is_superuser=is_superuser,
        is_active=is_active,
    )
    if password:
        password_validate(password, user)
    user.set_password(password or None)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError:
        raise username_taken() from None
    return user


def user_update(
    *,
    user: User,
    actor: User | None = None,
    ctx: RequestContext | None = None,
    password: str | None = None,
    unlock: bool = False,
    **changes,
) -> User:
    """An admin's edit of a user: plain fields (``username``, ``email``, ``mfa_method``,
    ``is_admin``, ``is_active``), a new password, and "unlock", all or nothing; the password
    and the unlock are audited with the acting admin. Every value is checked before anything
    is written. (Resetting the user's factors is ``mfa.setup.mfa_reset``.)"""
    allowed = {"username", "email", "mfa_method", "is_admin", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({f: _("Unknown field.") for f in sorted(unknown)})
    if "username" in changes:
        changes["username"] = _validate_username(changes["username"])
    if "email" in changes:
        changes["email"] = _validate_email(changes["email"])
        # Compared with the stored address: the admin's form has already set the new one on ``user``.
        if User.objects.filter(pk=user.pk).exclude(email=changes["email"]).exists():
            changes["email_verified_at"] = None  # nobody has read mail at the new address yet
    if "mfa_method" in changes and changes["mfa_method"] not in MfaMethod.values:
        raise ValidationError({"mfa_method": _("Choose one of: %(methods)s.") % {"methods": ", ".join(MfaMethod.values)}})
    if "mfa_method" in changes and changes["mfa_method"] != user.mfa_method and not _method_allowed(user.tenant, changes["mfa_method"]):
        raise ValidationError({"mfa_method": _method_not_allowed(user.tenant)}, code="method_not_allowed")
    if "is_admin" in changes:
        user.is_tenant_admin = bool(changes.pop("is_admin"))
        user.is_staff = user.is_tenant_admin or user.is_superuser
    for field, value in changes.items():
        setattr(user, field, value)
    with transaction.atomic():
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise username_taken() from None
        if password is not None:
            user_set_password(user=user, password=password, actor=actor, ctx=ctx)
        if unlock:
            user_unlock(user=user, actor=actor, ctx=ctx)
    return user


def user_sessions_end(*, user: User, keep_chain=None) -> None:
    """End the user's browser sessions, unfinished sign-ins and refresh tokens: a new security
    stamp (``User.get_session_auth_hash``, ``User.sign_in_fingerprint``) and every refresh-
    token chain revoked (but ``keep_chain``, the caller's own, when given), under the user's
    row lock. Inside the caller's transaction."""
    with transaction.atomic():
        refresh_tokens_revoke(user=user, keep_chain=keep_chain)  # takes the row lock first
        user.security_stamp = new_security_stamp()
        User.objects.filter(pk=user.pk).update(security_stamp=user.security_stamp)


def _password_replace(
    *, user: User, password: str, kind: str, notice: str, actor: User | None = None, ctx: RequestContext | None = None,
    keep_chain=None,
) -> None:
    """Write an already validated new password: the user's sessions, unfinished sign-ins and
    refresh tokens end (``keep_chain`` excepted), audited, the user told with who asked
    (address and time). Inside the caller's transaction."""
    with transaction.atomic(savepoint=False):
        user_sessions_end(user=user, keep_chain=keep_chain)
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_record(kind=kind, tenant_id=user.tenant_id, user=user, actor=actor, ctx=ctx)
        notify_user(user=user, kind=notice, **_asked_by(ctx))


def _asked_by(ctx: RequestContext | None) -> dict:
    """Who asked, for a mail: the client's address and the time (UTC, ISO 8601)."""
    return {"ip": (ctx.ip if ctx else None) or "", "at": timezone.now().isoformat(timespec="seconds")}


def user_set_password(*, user: User, password: str, actor: User | None = None, ctx: RequestContext | None = None) -> User:
    """An admin sets a new password: validated, hashed; the user's sessions, unfinished
    sign-ins and refresh tokens end; audited; the user is told (queued with the change)."""
    password_validate(password, user)
    with transaction.atomic():
        _password_replace(user=user, password=password, kind=Kind.PASSWORD_CHANGED, notice="password_changed", actor=actor, ctx=ctx)
    return user


def password_change(
    *, user: User, current_password: str, new_password: str, ctx: RequestContext | None = None, keep_chain=None
) -> User:
    """A signed-in user changes their own password. The new one is checked against the rules
    first (``new_password`` names the field); the current one goes through the one password
    path (``password_sign_in``: lockout, hash, a wrong one counted and able to lock), and the
    new one is written in that path's transaction, the row still locked. The other sessions,
    unfinished sign-ins and refresh tokens end (the caller keeps its own browser session with
    ``update_session_auth_hash``, an API caller its token chain, ``keep_chain``); audited; the
    user is told. Returns the user as written. Raises ``ValidationError``, ``InvalidCredentials``
    or ``LockedOut``."""
    password_validate(new_password if isinstance(new_password, str) else "", user, field="new_password")
    return password_sign_in(
        tenant=user.tenant, username=user.username, password=current_password, ctx=ctx, user=user,
        on_success=lambda locked: _password_replace(
            user=locked, password=new_password, kind=Kind.PASSWORD_CHANGED, notice="password_change_done", ctx=ctx,
            keep_chain=keep_chain,
        ),
    )


def email_verified_mark(*, user: User) -> None:
    """``user`` just used something mailed to their address (an emailed code, a reset link):
    the address is verified (``User.email_verified_at``), unless it changed meanwhile."""
    if user.email and user.email_verified_at is None:
        now = timezone.now()
        User.objects.filter(pk=user.pk, email=user.email).update(email_verified_at=now)
        user.email_verified_at = now


def password_reset(*, tenant, token: str, new_password: str, ctx: RequestContext | None = None) -> User:
    """Set a new password with a reset link's token. The token is judged first (a bad one is
    ``InvalidResetToken`` whatever the password), then the rules, then the token again under
    the user's row lock, so two uses of one link write at most once. Nobody is signed in:
    every session, unfinished sign-in and refresh token of the user ends. A password lockout
    is lifted, an MFA lockout is not (``lockout.password_lock_lift``). Audited; the user is
    told. Raises ``InvalidResetToken`` or ``ValidationError``."""
    uid = reset_token_user_id(token)
    user = user_get_or_none(tenant=tenant, user_id=uid) if uid is not None else None
    if user is None or not reset_token_valid(user, token):
        raise InvalidResetToken()
    password_validate(new_password if isinstance(new_password, str) else "", user, field="new_password")
    with transaction.atomic():
        locked = User.objects.select_for_update().filter(pk=user.pk, tenant=tenant).first()
        if locked is None:
            raise InvalidResetToken()
        locked.tenant = tenant
        if not reset_token_valid(locked, token):
            raise InvalidResetToken()
        _password_replace(user=locked, password=new_password, kind=Kind.PASSWORD_RESET, notice="password_reset_done", ctx=ctx)
        lockout.password_lock_lift(model=User, pk=locked.pk, code_limit=tenant.mfa_max_attempts)
        email_verified_mark(user=locked)  # the link was mailed to this address (its token is bound to it)
    return locked


def password_reset_send(
    *, user: User, link_base: str, actor: User | None = None, ctx: RequestContext | None = None, gap: int = 0
) -> bool:
    """Queue a mail with a reset link to ``user`` (an admin's "send a reset link", or a match
    of "Forgot password?"), in the caller's transaction: the link is made by the worker when
    it sends, for the state recorded here (``reset_state``), so no token is ever stored, and
    a password change before the send means no mail. ``gap``: at most one such mail per that
    many seconds (a forgot request's limit, the tenant's email resend gap), claimed with one
    conditional UPDATE. Answers whether a mail was queued; audited when so.

    An admin asking for an inactive user or one without an address gets a ``ValidationError``
    (``send_password_reset``, code ``cannot_send``); a forgot request (no actor) is quietly
    skipped for them."""
    if not user.is_active or not user.email:
        if actor is None:
            return False
        raise ValidationError({"send_password_reset": ValidationError(
            "This user cannot get a reset link: they are inactive or have no email address.", code="cannot_send")})
    now = timezone.now()
    claimed = User.objects.filter(pk=user.pk, tenant_id=user.tenant_id)
    if gap:
        claimed = claimed.filter(Q(password_reset_sent_at__isnull=True) | Q(password_reset_sent_at__lte=now - timedelta(seconds=gap)))
    with transaction.atomic():
        if not claimed.update(password_reset_sent_at=now):
            return False
        user.password_reset_sent_at = now
        notify_user(user=user, kind="password_reset", reset_state=reset_state(user), link_base=link_base,
                    by_admin=actor is not None, **_asked_by(ctx))
        audit_record(kind=Kind.PASSWORD_RESET_SENT, tenant_id=user.tenant_id, user=user, actor=actor, ctx=ctx)
    return True


def user_unlock(*, user: User, actor: User | None = None, ctx: RequestContext | None = None) -> User:
    with transaction.atomic():
        lockout.unlock(model=User, pk=user.pk)
        audit_record(kind=Kind.UNLOCK, tenant_id=user.tenant_id, user=user, actor=actor, ctx=ctx)
    user.refresh_from_db(fields=["failed_password_count", "failed_code_count", "locked_until"])
    return user


def user_delete(*, user: User) -> None:
    """The user and their factors go; their refresh-token chains go with them (cascade), so
    their refresh tokens stop working; their audit events stay."""
    with transaction.atomic():
        user.delete()


_READ_HERE = object()


def password_sign_in(
    *,
    tenant,
    username: str,
    password: str,
    ctx: RequestContext | None = None,
    user=_READ_HERE,
    on_success: Callable[[User], None] | None = None,
) -> User:
    """The password step, for the pages and the API alike. ``user``: the user named
    ``username`` in ``tenant``, or None, when the caller has read it already (the API, with
    the tenant: ``tenant_and_user_by_username``); else it is read here.

    django-otp's shape: lock the row → allowed? → verify → count or reset, in one
    transaction, so the count and its audit event are written together or not at all, and
    parallel attempts on one account are judged one after the other (never past the limit,
    and a right password never leaves behind a lock a parallel attempt set). An unknown
    username is counted the same way on an ``UnknownUsername`` row and costs one dummy hash, so
    neither the answer nor the time tells whether the user exists; the "locked" notice of a
    real user is only queued here (``notify_user``), never mailed inside the request.
    ``on_success(user)`` runs in that transaction, the row still locked: the API hands off to
    tokens there, so no password change or MFA reset can come between the check and the
    tokens. Returns the user as read under the lock. Raises ``LockedOut`` or
    ``InvalidCredentials``.
    """
    name = sign_in_name(username)
    password = password if isinstance(password, str) else ""
    if user is _READ_HERE:
        user = user_get_by_username(tenant=tenant, username=name)
    passed = locked_now = False
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user.pk).first() if user is not None else None
        state = user or UnknownUsername.objects.select_for_update().get(pk=_unknown_username_pk(tenant, name))
        wait = lockout.seconds_left(state.locked_until)
        if not wait:
            passed = _password_matches(user, password)
            if passed:
                lockout.password_passed(state=user)
                user.tenant = tenant
                if on_success is not None:
                    on_success(user)
            else:
                locked_now = _password_failure(tenant=tenant, state=state, user=user, name=name, ctx=ctx)
    if wait:
        metrics.sign_in_step(method="password", result="locked")
        raise LockedOut(wait)
    if not passed:
        metrics.sign_in_step(method="password", result="failure")
        if locked_now:
            metrics.lockout(counter="password")
        raise InvalidCredentials()
    metrics.sign_in_step(method="password", result="success")
    return user


def _password_matches(user: User | None, password: str) -> bool:
    if user is None:
        make_password(password)  # the same cost as checking a real hash
        return False
    return user.check_password(password) and user.is_active


def _password_failure(*, tenant, state, user: User | None, name: str, ctx: RequestContext | None) -> bool:
    """Count a wrong password and audit it; at the limit, audit the lock and queue the notice.
    True when this failure locked the account."""
    attempt = lockout.register_failure(
        model=type(state), pk=state.pk, counter="password", limit=tenant.password_max_attempts,
        lockout_seconds=tenant.lockout_seconds,
    )
    audit_record(kind=Kind.SIGN_IN_FAILURE, tenant_id=tenant.id, user=user, username=name, ctx=ctx)
    if attempt.locked_until is not None:
        audit_record(kind=Kind.LOCKOUT, tenant_id=tenant.id, user=user, username=name, ctx=ctx)
        if user is not None:
            notify_user(user=user, kind="locked", seconds=tenant.lockout_seconds)
    return attempt.locked_until is not None


def _unknown_username_pk(tenant, name: str) -> int:
    row = UnknownUsername.objects.filter(tenant=tenant, username=name).values_list("pk", flat=True).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return UnknownUsername.objects.create(tenant=tenant, username=name).pk
    except IntegrityError:  # created by a parallel request
        return UnknownUsername.objects.get(tenant=tenant, username=name).pk


def sign_in_record(*, user: User, ctx: RequestContext | None = None) -> None:
    """The whole sign-in (every factor) is done: stamp last_login and audit it, together.
    Changing last_login also ends every unfinished sign-in of the user
    (``User.sign_in_fingerprint``): an mfaToken or a pending page sign-in completes once.

    The only place last_login is written: Django's own ``update_last_login`` receiver is
    disconnected in ``AccountsConfig.ready``, or a page sign-in would write it twice."""
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # inside a caller's transaction, part of it
        User.objects.filter(pk=user.pk).update(last_login=now)
        user.last_login = now
        audit_record(kind=Kind.SIGN_IN_SUCCESS, tenant_id=user.tenant_id, user=user, ctx=ctx)
        channel = ctx.channel if ctx is not None else ""
        transaction.on_commit(lambda: metrics.sign_in_completed(channel=channel))  # counted once it is true


def sign_in_tokens_issue(*, user: User, amr: list[str], ctx: RequestContext | None = None) -> dict:
    """The API's hand-off after every required factor: ``sign_in_record`` and a new token
    chain, inside the transaction that judged the last factor (its row lock held)."""
    with transaction.atomic(savepoint=False):  # inside a caller's transaction, part of it
        sign_in_record(user=user, ctx=ctx)
        return token_pair_issue(user=user, amr=amr, ctx=ctx)


def sign_out_record(*, user: User, ctx: RequestContext | None = None) -> None:
    """A signed-in person signs out (a page or the admin): audited. The API's sign-out is
    ``accounts.tokens.token_revoke``, which audits the same event."""
    audit_record(kind=Kind.LOGOUT, tenant_id=user.tenant_id, user=user, ctx=ctx)

import secrets
import uuid

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class MfaMethod(models.TextChoices):
    NONE = "none", _("None")
    TOTP = "totp", _("Authenticator app")
    EMAIL = "email", _("Email code")
    WEBAUTHN = "webauthn", _("Passkey or security key")


class LockoutState(models.Model):
    """Failure counters and the lock they lead to (see ``accounts.lockout``)."""

    failed_password_count = models.PositiveIntegerField(
        default=0, help_text=_("Wrong passwords since the last success or the end of the last lockout.")
    )
    failed_code_count = models.PositiveIntegerField(
        default=0, help_text=_("Wrong MFA codes since the last success or the end of the last lockout.")
    )
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text=_("While in the future, every sign-in attempt is refused.")
    )

    class Meta:
        abstract = True


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, username, email="", password=None, *, tenant, **extra):
        user = self.model(tenant=tenant, username=username, email=self.normalize_email(email), **extra)
        user.set_password(password)  # None makes the password unusable
        user.save(using=self._db)
        return user

    def create_superuser(self, username, email="", password=None, *, tenant, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(username, email, password, tenant=tenant, **extra)


def new_security_stamp() -> str:
    return secrets.token_hex(16)


_SESSION_SALT = "gatehouse.accounts.User.session"
_PENDING_SALT = "gatehouse.accounts.User.pending"


class User(AbstractBaseUser, PermissionsMixin, LockoutState):
    """A person who signs in to one tenant. The same username may exist in other tenants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, help_text=_("Random, never sequential."))
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="users", help_text=_("The tenant this person belongs to.")
    )
    username = models.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("Unique within the tenant, case-insensitive (stored lower-case). Letters, digits and @/./+/-/_ only."),
    )
    email = models.EmailField(help_text=_("Where emailed codes and security notices are sent."))
    is_active = models.BooleanField(default=True, help_text=_("Inactive people cannot sign in."))
    is_tenant_admin = models.BooleanField(
        _("tenant admin"),
        default=False,
        help_text=_("Tenant admins manage their tenant's users and policy (Users API and the admin site)."),
    )
    is_staff = models.BooleanField(
        default=False, help_text=_("May use the admin site (set for tenant admins and platform operators).")
    )
    mfa_method = models.CharField(
        _("MFA method"),
        max_length=8,
        choices=MfaMethod.choices,
        default=MfaMethod.NONE,
        help_text=_("The second factor this person must give after their password."),
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text=_("When the account was created."))
    security_stamp = models.CharField(
        max_length=32,
        default=new_security_stamp,
        help_text=_(
            "Random; replaced when the password changes or MFA is reset, which ends the person's "
            "browser sessions and unfinished sign-ins."
        ),
    )
    last_code_hash = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text=_(
            "Keyed hash of the last second-factor code accepted: that code sent again is "
            "'already used', not a failure (a double submit locks no one out)."
        ),
    )

    email_verified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "When this person last showed they read mail at this address: an emailed code or a "
            "password reset link used. Emptied when the address changes. Sign-in for other apps "
            "(OpenID Connect) reports the address as verified only when this is set."
        ),
    )

    password_reset_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When the last password reset link was queued for this person: on a forgot-password request "
            "another is mailed only after the tenant's email resend gap."
        ),
    )

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email", "tenant"]

    class Meta:
        ordering = ["tenant_id", "username"]
        constraints = [
            # Usernames are stored lower-cased (``accounts.services.normalize_username``).
            models.UniqueConstraint(fields=["tenant", "username"], name="accounts_user_unique_username_per_tenant"),
        ]
        indexes = [models.Index(fields=["tenant", "created_at", "id"], name="accounts_user_tenant_created")]

    def __str__(self) -> str:
        return f"{self.username} ({self.tenant_id})"

    @property
    def needs_second_factor(self) -> bool:
        """Whether a sign-in of this person must pass a second factor: they have a method, or
        their tenant requires one (then they set one up first)."""
        return self.mfa_method != MfaMethod.NONE or self.tenant.mfa_required

    def get_session_auth_hash(self) -> str:
        """Django checks this on every request of a session: it changes with the password (as
        Django's own does) and with the security stamp, so an MFA reset ends sessions too."""
        return self._session_hash(settings.SECRET_KEY)

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret)

    def _session_hash(self, secret: str) -> str:
        return salted_hmac(_SESSION_SALT, f"{self.password}|{self.security_stamp}", secret=secret, algorithm="sha256").hexdigest()

    def sign_in_fingerprint(self) -> str:
        """What an unfinished sign-in (password passed, factor not yet) is bound to. It changes
        with the password, the method, the security stamp and last_login, so a pending sign-in
        dies when any of them changes: above all when a sign-in completes (it is single-use)."""
        state = f"{self.pk}|{self.password}|{self.mfa_method}|{self.security_stamp}|{self.last_login}"
        return salted_hmac(_PENDING_SALT, state, algorithm="sha256").hexdigest()[:32]

    def get_full_name(self) -> str:
        return self.username

    def get_short_name(self) -> str:
        return self.username


class UnknownUsername(LockoutState):
    """Failure counters for a username that has no account, so a lockout reveals nothing."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, help_text=_("The tenant signed in to."))
    username = models.CharField(max_length=150, help_text=_("The username as typed, lower-cased."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "username"], name="accounts_unknownusername_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.tenant_id})"


class AuditEvent(models.Model):
    """One security-relevant event. Append-only: written by services, never edited."""

    class Kind(models.TextChoices):
        SIGN_IN_SUCCESS = "login_success", _("Sign-in succeeded")
        SIGN_IN_FAILURE = "login_failure", _("Wrong password")
        CODE_FAILURE = "code_failure", _("Wrong code")
        LOCKOUT = "lockout", _("Account locked")
        REPLAY_REFUSED = "replay_refused", _("Reused code refused")
        FACTOR_SETUP = "factor_setup", _("Second factor set up")
        RECOVERY_CODE_USED = "recovery_code_used", _("Recovery code used")
        RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated", _("Recovery codes regenerated")
        MFA_RESET = "mfa_reset", _("MFA reset")
        UNLOCK = "unlock", _("Account unlocked")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        LOGOUT = "logout", _("Signed out")
        REFRESH_TOKEN_REUSED = "refresh_token_reused", _("Used refresh token presented again")
        PASSKEY_ADDED = "passkey_added", _("Passkey added")
        PASSKEY_USED = "passkey_used", _("Passkey used")
        PASSKEY_REMOVED = "passkey_removed", _("Passkey removed")
        PASSKEY_CLONE_SUSPECTED = "passkey_clone_suspected", _("Passkey refused: its sign count went back")
        BROWSER_REMEMBERED = "browser_remembered", _("Browser remembered")
        REMEMBERED_BROWSER_USED = "remembered_browser_used", _("Remembered browser skipped the second factor")
        REMEMBERED_BROWSERS_FORGOTTEN = "remembered_browsers_forgotten", _("Remembered browsers forgotten")
        PASSWORD_RESET_SENT = "password_reset_sent", _("Password reset link sent")
        PASSWORD_RESET = "password_reset", _("Password reset with a link")

    id = models.BigAutoField(primary_key=True)
    # Every sign-in writes one row: the indexes are the ones its reads need, no more (see Meta).
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        related_name="audit_events",
        db_index=False,  # the composite indexes lead with it
        help_text=_("The tenant it happened in."),
    )
    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
        help_text=_("The person it happened to (empty for an unknown username)."),
    )
    username = models.CharField(max_length=150, blank=True, help_text=_("The username as given, kept if the user is deleted."))
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # a partial index (Meta): most rows have no actor
        help_text=_("The admin who acted, for admin actions."),
    )
    kind = models.CharField(max_length=32, choices=Kind.choices, help_text=_("What happened."))
    ip = models.GenericIPAddressField(null=True, blank=True, help_text=_("The client's address."))
    user_agent = models.CharField(max_length=300, blank=True, help_text=_("The client's User-Agent header."))
    channel = models.CharField(max_length=8, blank=True, help_text=_("Where: web, api, admin or cli."))
    created_at = models.DateTimeField(auto_now_add=True, help_text=_("When it happened."))

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A user's events (Users/{id}/events), newest first.
            models.Index(fields=["tenant", "user", "-created_at"], name="accounts_audit_tenant_user"),
            # A tenant's events (the admin's list), newest first; also a tenant's deletion.
            models.Index(fields=["tenant", "-created_at", "-id"], name="accounts_audit_tenant_created"),
            # An admin's deletion sets actor to NULL on their rows: only rows with an actor are indexed.
            models.Index(fields=["actor"], name="accounts_audit_actor", condition=models.Q(actor__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username} ({self.tenant_id})"


class RefreshTokenChain(models.Model):
    """The refresh tokens of one sign-in: each refresh replaces the token and keeps the chain.

    A chain ends when it is revoked (sign-out, a used token presented again, a password change,
    an MFA reset) or at ``expires_at``, ``REFRESH_TOKEN_MAX_SECONDS`` after the sign-in that
    began it, however often it was refreshed. A refresh token names its chain (claim ``chain``);
    a token whose chain has ended is refused.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, help_text=_("The tokens' ``chain`` claim."))
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_chains", help_text=_("Whose sign-in."))
    auth_time = models.DateTimeField(help_text=_("When the sign-in that began the chain was completed."))
    expires_at = models.DateTimeField(help_text=_("No refresh after this, however often the chain was refreshed."))
    revoked_at = models.DateTimeField(null=True, blank=True, help_text=_("When the chain was ended; its tokens are refused."))

    def __str__(self) -> str:
        return f"Refresh token chain of {self.user} from {self.auth_time:%Y-%m-%d %H:%M:%S}"

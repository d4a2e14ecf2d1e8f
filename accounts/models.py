import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import models


class MfaMethod(models.TextChoices):
    NONE = "none", "None"
    TOTP = "totp", "Authenticator app"
    EMAIL = "email", "Email code"


class LockoutState(models.Model):
    """Failure counters and the lock they lead to (see ``accounts.lockout``)."""

    failed_password_count = models.PositiveIntegerField(
        default=0, help_text="Wrong passwords since the last success or the end of the last lockout."
    )
    failed_code_count = models.PositiveIntegerField(
        default=0, help_text="Wrong MFA codes since the last success or the end of the last lockout."
    )
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text="While in the future, every sign-in attempt is refused."
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


class User(AbstractBaseUser, PermissionsMixin, LockoutState):
    """A person who signs in to one tenant. The same username may exist in other tenants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, help_text="Random, never sequential.")
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, related_name="users", help_text="The tenant this person belongs to."
    )
    username = models.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Unique within the tenant, case-insensitive (stored lower-case). Letters, digits and @/./+/-/_ only.",
    )
    email = models.EmailField(help_text="Where emailed codes and security notices are sent.")
    is_active = models.BooleanField(default=True, help_text="Inactive people cannot sign in.")
    is_tenant_admin = models.BooleanField(
        "tenant admin",
        default=False,
        help_text="Tenant admins manage their tenant's users and policy (Users API and the admin site).",
    )
    is_staff = models.BooleanField(
        default=False, help_text="May use the admin site (set for tenant admins and platform operators)."
    )
    mfa_method = models.CharField(
        "MFA method",
        max_length=8,
        choices=MfaMethod.choices,
        default=MfaMethod.NONE,
        help_text="The second factor this person must give after their password.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the account was created.")

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

    def get_full_name(self) -> str:
        return self.username

    def get_short_name(self) -> str:
        return self.username


class UnknownLogin(LockoutState):
    """Failure counters for a username that has no account, so a lockout reveals nothing."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, help_text="The tenant signed in to.")
    username = models.CharField(max_length=150, help_text="The username as typed, lower-cased.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "username"], name="accounts_unknownlogin_unique_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.tenant_id})"


class AuditEvent(models.Model):
    """One security-relevant event. Append-only: written by services, never edited."""

    class Kind(models.TextChoices):
        LOGIN_SUCCESS = "login_success", "Sign-in succeeded"
        LOGIN_FAILURE = "login_failure", "Wrong password"
        CODE_FAILURE = "code_failure", "Wrong code"
        LOCKOUT = "lockout", "Account locked"
        REPLAY_REFUSED = "replay_refused", "Reused code refused"
        FACTOR_SETUP = "factor_setup", "Second factor set up"
        RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
        RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated", "Recovery codes regenerated"
        MFA_RESET = "mfa_reset", "MFA reset"
        UNLOCK = "unlock", "Account unlocked"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        LOGOUT = "logout", "Signed out"

    id = models.BigAutoField(primary_key=True)
    # Every sign-in writes one row: the indexes are the ones its reads need, no more (see Meta).
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        related_name="audit_events",
        db_index=False,  # the composite indexes lead with it
        help_text="The tenant it happened in.",
    )
    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
        help_text="The person it happened to (empty for an unknown username).",
    )
    username = models.CharField(max_length=150, blank=True, help_text="The username as given, kept if the user is deleted.")
    actor = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # a partial index (Meta): most rows have no actor
        help_text="The admin who acted, for admin actions.",
    )
    kind = models.CharField(max_length=32, choices=Kind.choices, help_text="What happened.")
    ip = models.GenericIPAddressField(null=True, blank=True, help_text="The client's address.")
    user_agent = models.CharField(max_length=300, blank=True, help_text="The client's User-Agent header.")
    channel = models.CharField(max_length=8, blank=True, help_text="Where: web, api, admin or cli.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it happened.")

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

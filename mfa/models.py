from django.conf import settings
from django.db import models


class TOTPDevice(models.Model):
    """A person's authenticator app: the shared secret, encrypted, and the last step used."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device", help_text="Whose app this is."
    )
    secret_encrypted = models.TextField(help_text="The base32 secret, encrypted with MFA_ENCRYPTION_KEYS (Fernet).")
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a first code proved the app was set up; empty while setting up."
    )
    last_step = models.BigIntegerField(
        default=0, help_text="The last accepted time step; a code must be of a later step (RFC 6238 §5.2)."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When set-up began.")

    class Meta:
        verbose_name = "TOTP device"

    def __str__(self) -> str:
        return f"Authenticator app of {self.user}"


class EmailCode(models.Model):
    """One emailed code, stored only as a keyed hash. The first code used ends them all."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_codes", help_text="Who it was sent to."
    )
    code_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the code.")
    created_at = models.DateTimeField(help_text="When it was sent.")
    expires_at = models.DateTimeField(help_text="After this it is refused.")

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="mfa_emailcode_user_created")]

    def __str__(self) -> str:
        return f"Email code for {self.user} sent {self.created_at:%Y-%m-%d %H:%M:%S}"


class RecoveryCode(models.Model):
    """A single-use recovery code, stored only as a keyed hash (HMAC under a key from SECRET_KEY)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="recovery_codes",
        help_text="Whose code this is.",
    )
    code_hash = models.CharField(max_length=100, help_text="HMAC-SHA256 of the user's id and the normalized code.")
    used_at = models.DateTimeField(null=True, blank=True, help_text="When it was used; a used code is refused.")

    def __str__(self) -> str:
        return f"Recovery code of {self.user}"

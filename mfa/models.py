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


class WebAuthnCredential(models.Model):
    """A passkey or security key (WebAuthn): its public key and the last sign count it gave."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webauthn_credentials",
        help_text="Whose passkey this is.",
    )
    name = models.CharField(max_length=100, help_text="A name the person chose, shown on their account page.")
    credential_id = models.CharField(
        max_length=1400,
        help_text="The credential id the authenticator made, base64url without padding (unique).",
    )
    public_key = models.BinaryField(
        help_text=(
            "The attested credential data (AAGUID, credential id, COSE public key) from the "
            "registration; only a public key, nothing secret."
        )
    )
    sign_count = models.PositiveBigIntegerField(
        default=0,
        help_text="The authenticator's signature counter as last seen; a count that goes back means a clone and is refused.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was registered.")
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="When it last signed a sign-in in.")

    class Meta:
        verbose_name = "passkey"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["credential_id"], name="mfa_webauthncredential_unique_credential_id"),
        ]

    def __str__(self) -> str:
        return f"Passkey '{self.name}' of {self.user}"


class WebAuthnChallenge(models.Model):
    """A challenge handed to a browser or app for one passkey ceremony: single use, short-lived,
    bound to the pending sign-in (or signed-in session) that asked for it."""

    class Purpose(models.TextChoices):
        REGISTER = "register", "Registration"
        AUTHENTICATE = "authenticate", "Authentication"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webauthn_challenges",
        help_text="Who the challenge was issued to.",
    )
    challenge = models.CharField(max_length=100, help_text="The random challenge, base64url without padding.")
    purpose = models.CharField(max_length=12, choices=Purpose.choices, help_text="Registration or authentication.")
    binding = models.CharField(
        max_length=64,
        help_text="What the challenge is bound to: the pending sign-in's fingerprint, or a keyed hash of the session.",
    )
    rp_id = models.CharField(max_length=253, help_text="The relying party id (host) the options were made for.")
    expires_at = models.DateTimeField(help_text="After this the challenge is refused (at most 5 minutes after it was made).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge"], name="mfa_webauthnchallenge_unique_challenge"),
        ]
        indexes = [models.Index(fields=["user", "expires_at"], name="mfa_webauthnchallenge_user_exp")]

    def __str__(self) -> str:
        return f"WebAuthn {self.purpose} challenge for {self.user}"


class RememberedBrowser(models.Model):
    """A browser (or app) that may skip the second factor until ``expires_at``: the server's half
    of a "remember this browser" cookie or ``deviceToken``, so it can be revoked."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="remembered_browsers",
        help_text="Whose browser this is.",
    )
    token_hash = models.CharField(max_length=64, help_text="Keyed hash of the random secret in the cookie or deviceToken.")
    security_stamp = models.CharField(
        max_length=32,
        help_text="The user's security stamp when it was made: a password change or an MFA reset changes the stamp and ends it.",
    )
    user_agent = models.CharField(max_length=300, blank=True, help_text="The browser's User-Agent when it was remembered.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was remembered.")
    expires_at = models.DateTimeField(help_text="After this the second factor is asked again.")
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="When it last skipped the second factor.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="mfa_rememberedbrowser_unique_token_hash"),
        ]

    def __str__(self) -> str:
        return f"Remembered browser of {self.user}"

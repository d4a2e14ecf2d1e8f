import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator, URLValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

TENANT_ID_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,62}\Z",
    message=_("A tenant id is 2–63 characters: lowercase letters, digits and hyphens, not starting with a hyphen."),
    code="invalid_tenant_id",
)


def validate_issuer(value: str) -> None:
    """The issuer is shown by authenticator apps and sits in the otpauth URI's label, where a
    colon separates it from the account: only printable characters (``str.isprintable``: no
    line break, tab, DEL or invisible format character such as a zero-width space), no colon."""
    if ":" in value:
        raise ValidationError(_("The issuer cannot contain a colon."), code="invalid_issuer")
    if not value.isprintable():
        raise ValidationError(
            _("The issuer can only hold printable characters: no line breaks, tabs or invisible characters."),
            code="invalid_issuer",
        )


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_with_white(hex_colour: str) -> float:
    """WCAG 2 contrast ratio of white text on this colour."""
    return 1.05 / (_luminance(hex_colour) + 0.05)


def validate_accent_color(value: str) -> None:
    """``#rrggbb`` on which white button text stays readable (WCAG AA, 4.5:1)."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValidationError(_("Enter a colour as #rrggbb, for example #0b5cad."), code="invalid_accent_color")
    if contrast_with_white(value) < 4.5:
        raise ValidationError(
            _("This colour is too light: white text on it would be hard to read (contrast %(ratio).1f:1, at least 4.5:1 is needed)."),
            code="accent_color_too_light", params={"ratio": contrast_with_white(value)},
        )


validate_logo_url = URLValidator(schemes=["https"], message=_("Enter an https:// address of an image."), code="invalid_logo_url")


def language_choices() -> list[tuple[str, str]]:
    return [(code, name) for code, name in settings.LANGUAGES]


SECOND_FACTORS = ("totp", "email", "webauthn")  # the values of ``accounts.models.MfaMethod`` that are factors


def default_allowed_methods() -> list[str]:
    return list(SECOND_FACTORS)


def validate_allowed_methods(value) -> None:
    """A non-empty list of distinct second factors: ``totp``, ``email``, ``webauthn``."""
    if not isinstance(value, list) or not value:
        raise ValidationError(_("Allow at least one second factor."), code="invalid_allowed_methods")
    if any(not isinstance(item, str) or item not in SECOND_FACTORS for item in value) or len(set(value)) != len(value):
        raise ValidationError(
            _("Allowed methods are a list of distinct values among totp, email and webauthn."), code="invalid_allowed_methods"
        )


def policy_bounds(field_name: str) -> dict:
    """``min_value``/``max_value`` of a policy field, from its validators (their one home), as
    ``ModelSerializer`` derives them; for the API's fields and the commands' options."""
    bounds = {}
    for validator in Tenant._meta.get_field(field_name).validators:
        if isinstance(validator, MinValueValidator):
            bounds["min_value"] = validator.limit_value
        elif isinstance(validator, MaxValueValidator):
            bounds["max_value"] = validator.limit_value
    return bounds


class Tenant(models.Model):
    """A customer organisation: its users, and the MFA and lockout policy they sign in under."""

    id = models.CharField(
        primary_key=True,
        max_length=63,
        validators=[TENANT_ID_VALIDATOR],
        help_text=_("The tenant's id as it appears in every URL. Chosen at creation and never changed."),
    )
    name = models.CharField(max_length=200, help_text=_("The name people see on sign-in pages and in emails."))
    mfa_max_attempts = models.PositiveSmallIntegerField(
        _("MFA attempt limit"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "How many wrong codes (authenticator app, email or recovery code) a person may enter "
            "before their account is locked for the lockout period. 1–100."
        ),
    )
    password_max_attempts = models.PositiveSmallIntegerField(
        _("password attempt limit"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "How many wrong passwords may be entered for one username before that account is "
            "locked for the lockout period. 1–100."
        ),
    )
    lockout_seconds = models.PositiveIntegerField(
        _("lockout period (seconds)"),
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(86400)],
        help_text=_(
            "How long a locked account must wait. During this time every sign-in attempt is "
            "refused, even with the right password or code; afterwards the counters start again "
            "from zero. 1–86400 seconds (one day)."
        ),
    )
    mfa_required = models.BooleanField(
        _("MFA required"),
        default=False,
        help_text=_(
            "When on, people without a second factor must choose and set up an authenticator "
            "app or email codes the next time they sign in."
        ),
    )
    email_code_ttl_seconds = models.PositiveIntegerField(
        _("email code lifetime (seconds)"),
        default=600,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
        help_text=_("How long an emailed code can be used. 1–600 seconds (NIST's ceiling is ten minutes)."),
    )
    email_resend_seconds = models.PositiveIntegerField(
        _("email resend gap (seconds)"),
        default=60,
        validators=[MinValueValidator(0), MaxValueValidator(3600)],
        help_text=_("The shortest wait between two emailed codes for the same person. 0–3600 seconds."),
    )
    password_min_length = models.PositiveSmallIntegerField(
        _("password minimum length"),
        default=12,
        validators=[MinValueValidator(8), MaxValueValidator(128)],
        help_text=_(
            "The fewest characters a new password may have (set by a person, an admin, the API or "
            "the command line). Passwords set before a change keep working. 8–128."
        ),
    )
    password_reset_ttl_seconds = models.PositiveIntegerField(
        _("password reset link lifetime (seconds)"),
        default=3600,
        validators=[MinValueValidator(300), MaxValueValidator(86400)],
        help_text=_(
            "How long a password reset link, asked for by the person or sent by an admin, can be used. "
            "A link also dies once used and whenever the password changes. 300–86400 seconds."
        ),
    )
    issuer = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_issuer],
        help_text=_(
            "The name authenticator apps show next to the account. Leave empty to use the "
            "tenant's name. At most 64 printable characters, no colon."
        ),
    )
    allowed_methods = models.JSONField(
        _("allowed second factors"),
        default=default_allowed_methods,
        validators=[validate_allowed_methods],
        help_text=_(
            "The second factors people may use: totp (authenticator app), email (emailed codes), "
            "webauthn (passkeys and security keys); at least one. A person whose method is no "
            "longer allowed chooses another at their next sign-in."
        ),
    )
    remember_device_days = models.PositiveSmallIntegerField(
        _("remember browsers for (days)"),
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(90)],
        help_text=_(
            "After the second factor, people may ask to have their browser remembered and skip the "
            "second factor on that browser for this many days. 0 turns it off. 0–90."
        ),
    )
    default_language = models.CharField(
        _("default language"),
        max_length=8,
        default="en",
        choices=language_choices,
        help_text=_(
            "The language of the pages and emails when the person's browser asks for none that "
            "Gatehouse has (English, German or Spanish)."
        ),
    )
    logo_url = models.URLField(
        _("logo URL"),
        max_length=500,
        blank=True,
        validators=[validate_logo_url],
        help_text=_("Optional: an https:// address of the logo shown beside the tenant's name on the sign-in pages (about 32 pixels high)."),
    )
    accent_color = models.CharField(
        _("accent colour"),
        max_length=7,
        blank=True,
        validators=[validate_accent_color],
        help_text=_(
            "Optional: the colour of buttons and links on the sign-in pages, as #rrggbb. It must be "
            "dark enough for white text (contrast at least 4.5:1). Empty: Gatehouse's blue."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text=_("When the tenant was created."))

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def effective_issuer(self) -> str:
        """The issuer for authenticator apps: the set one, else the display name made to follow
        the issuer's rule (a colon or an unprintable character becomes a space)."""
        from_name = "".join(" " if ch == ":" or not ch.isprintable() else ch for ch in self.name)
        return self.issuer or from_name.strip()[:64] or self.id

    def allows(self, method: str) -> bool:
        """Whether people of this tenant may use ``method`` as their second factor."""
        return method in (self.allowed_methods or SECOND_FACTORS)


class SigningKey(models.Model):
    """One of a tenant's asymmetric signing keys: every JWT Gatehouse issues for the tenant
    (API access and refresh tokens, OpenID Connect ID tokens) is signed with its newest
    active key and names it in ``kid``. A key retired by a rotation still verifies, and
    stays in the tenant's JWKS, until every token it signed has expired
    (``tenants.signing``)."""

    class Algorithm(models.TextChoices):
        RS256 = "RS256", "RS256 (RSA 2048, SHA-256)"
        ES256 = "ES256", "ES256 (ECDSA P-256, SHA-256)"

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="signing_keys", help_text="The tenant whose tokens this key signs."
    )
    kid = models.CharField(
        max_length=64, unique=True, help_text="The key id in tokens' headers and the JWKS: the RFC 7638 thumbprint of the public key."
    )
    algorithm = models.CharField(
        max_length=5, choices=Algorithm.choices, default=Algorithm.RS256, help_text="The JWS algorithm this key signs with."
    )
    public_jwk = models.JSONField(help_text="The public key as a JWK (RFC 7517), as published in the JWKS.")
    private_key_encrypted = models.TextField(
        help_text="The private key (PEM, PKCS#8), encrypted at rest with MFA_ENCRYPTION_KEYS. Never shown."
    )
    created_at = models.DateTimeField(help_text="When the key was made; the newest active key signs.")
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="When a newer key took over. Empty while the key signs."
    )

    class Meta:
        ordering = ["tenant_id", "-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="tenants_signingkey_newest")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.algorithm} {self.kid}"

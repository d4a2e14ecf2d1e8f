"""Input and output shapes of the API (camelCase), kept apart: inputs check types and
refuse unknown keys, and rename with ``source=`` so that ``validated_data`` holds the
service's keyword arguments; the rules (lengths of usernames, password strength, policy
ranges) live in the services and model validators they hand over to. The policy ranges are
read from the ``Tenant`` model's validators (``policy_bounds``), as a ``ModelSerializer``
would, so that a request is refused, and documented, with the model's numbers."""
from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import lockout
from accounts.models import AuditEvent, MfaMethod
from mfa.setup import mfa_enrolled, passkey_count
from tenants.models import SECOND_FACTORS, Tenant, policy_bounds
from django.utils.translation import gettext_lazy as _

# --- strict fields: JSON types are not coerced (DRF would take 5 for "5" and "yes" for true)


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": _("Must be a string.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "format": "email", "maxLength": 254})
class EmailInputField(StrictCharField):
    """A string here; ``accounts.services`` judges the address (one home for that rule)."""


@extend_schema_field({"type": "string", "pattern": r"^[\w.@+-]+$", "maxLength": 150})
class UsernameInputField(StrictCharField):
    """A string here; ``accounts.services`` judges the name (letters, digits and @/./+/-/_)."""


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": _("Must be a whole number.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class InputSerializer(serializers.Serializer):
    """Refuses keys it does not know, each named in ``fields``."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: [_("Unknown field.")] for key in unknown})
        return super().to_internal_value(data)


# --- errors ---------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable, machine-readable code such as `invalid_credentials`.")
    detail = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages (validation errors only). `request` holds errors about the body as a whole.",
    )
    attemptsRemaining = serializers.IntegerField(required=False, help_text="With `invalid_code`: wrong codes left before lockout.")
    retryAfter = serializers.IntegerField(
        required=False, help_text="With `locked_out` and `resend_too_soon`: seconds to wait (also the Retry-After header)."
    )


# --- the sign-in flow -----------------------------------------------------------------------


class LoginInput(InputSerializer):
    username = StrictCharField(max_length=300, trim_whitespace=False)
    password = StrictCharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    deviceToken = StrictCharField(
        source="device_token", required=False, max_length=1024,
        help_text="The `deviceToken` an earlier `auth/mfa/verify` answered with `rememberDevice: true`: while it is valid, the second factor is skipped.",
    )


class MfaTokenInput(InputSerializer):
    mfaToken = StrictCharField(source="mfa_token", max_length=1024, help_text="The `mfaToken` of the `auth/login` answer (valid 10 minutes).")


class StrictDictField(serializers.DictField):
    default_error_messages = {"not_a_dict": "Must be a JSON object."}


@extend_schema_field({"type": "object", "additionalProperties": True, "description": "A WebAuthn `PublicKeyCredential` as JSON (`credential.toJSON()`): `id`, `rawId`, `type`, `response` with base64url values."})
class CredentialField(StrictDictField):
    pass


CODE_HELP = "Six digits from the app or the email (spaces ignored), or an unused recovery code. Give `code` or `credential`."
CREDENTIAL_HELP = "Passkey users: the answer of `navigator.credentials.get` (or `.create` while setting up) to the options of `auth/mfa/webauthn/options`."
REMEMBER_HELP = "When the tenant's `rememberDeviceDays` is above 0: also answer a `deviceToken` that skips the second factor at `auth/login` for that many days."


class VerifyInput(MfaTokenInput):
    code = StrictCharField(max_length=64, required=False, trim_whitespace=False, help_text=CODE_HELP)
    credential = CredentialField(required=False, help_text=CREDENTIAL_HELP)
    rememberDevice = StrictBooleanField(source="remember_device", required=False, default=False, help_text=REMEMBER_HELP)

    def validate(self, attrs):
        if ("code" in attrs) == ("credential" in attrs):
            raise serializers.ValidationError({"code": ["Give either a code or a credential."]})
        return attrs


# The two shapes of ``VerifyInput`` for the published schema (``oneOf``): a code, or a passkey's answer.
class VerifyCodeInput(MfaTokenInput):
    code = StrictCharField(max_length=64, trim_whitespace=False, help_text=CODE_HELP)
    rememberDevice = StrictBooleanField(required=False, help_text=REMEMBER_HELP)


class VerifyPasskeyInput(MfaTokenInput):
    credential = CredentialField(help_text=CREDENTIAL_HELP)
    rememberDevice = StrictBooleanField(required=False, help_text=REMEMBER_HELP)


class WebAuthnOptionsSerializer(serializers.Serializer):
    publicKey = serializers.DictField(
        help_text=(
            "`PublicKeyCredentialCreationOptions` while a passkey is being set up, else "
            "`PublicKeyCredentialRequestOptions`, as JSON (binary values in base64url; "
            "`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read them). "
            "Its challenge is single-use and lives 5 minutes."
        )
    )


class RefreshInput(InputSerializer):
    refreshToken = StrictCharField(source="refresh_token", max_length=4096)


def _new_password_field(**kwargs):
    # Longer than the rule's 1,024 characters, so that the rule answers (`invalid_password`).
    return StrictCharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"}, **kwargs)


class ForgotInput(InputSerializer):
    login = StrictCharField(max_length=254, help_text="A username or an email address of this tenant.")


class ForgotResultSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="The same sentence whether or not an account matched.")


class ResetInput(InputSerializer):
    token = StrictCharField(max_length=1024, allow_blank=True, trim_whitespace=False, help_text="The last part of the emailed link `/tenant/ID/password/reset/TOKEN/`.")
    newPassword = _new_password_field(source="new_password", help_text="Must pass the tenant's password rules.")


class PasswordChangeInput(InputSerializer):
    currentPassword = StrictCharField(source="current_password", max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    newPassword = _new_password_field(source="new_password", help_text="Must pass the tenant's password rules.")


class TokensSerializer(serializers.Serializer):
    accessToken = serializers.CharField(help_text="JWT with `sub`, `tid`, `amr` and `admin`; send as `Authorization: Bearer …`.")
    refreshToken = serializers.CharField(help_text="Single use: `auth/token/refresh` answers a new pair and voids it.")
    tokenType = serializers.ChoiceField(choices=["Bearer"])
    expiresIn = serializers.IntegerField(help_text="Seconds until the access token expires.")


class VerifyResultSerializer(TokensSerializer):
    recoveryCodes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Only when this code finished setting up the authenticator app or a first passkey: shown once, store them safely.",
    )
    deviceToken = serializers.CharField(
        required=False,
        help_text="Only with `rememberDevice: true` where the tenant allows it: send it with `auth/login` to skip the second factor on this device until it expires or is revoked.",
    )


class MfaChallengeSerializer(serializers.Serializer):
    mfaRequired = serializers.BooleanField(help_text="Always true: the password was right, a second factor is needed.")
    mfaToken = serializers.CharField(help_text="Pass to the `auth/mfa/…` calls; valid 10 minutes, for this sign-in only.")
    mfaMethod = serializers.ChoiceField(choices=["totp", "email", "webauthn"], help_text="The second factor this sign-in needs.")
    enrollmentRequired = serializers.BooleanField(
        help_text="True when a method must be set up first: `auth/mfa/totp/setup` (app), or `auth/mfa/email/send` to choose email instead when the account has no method yet."
    )


class TotpSetupSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The base32 key, for typing into an app by hand.")
    otpauthUri = serializers.CharField(help_text="The `otpauth://totp/…` URI the QR code holds.")
    qrSvg = serializers.CharField(help_text="The QR code as an inline SVG document.")


class EmailSentSerializer(serializers.Serializer):
    sentTo = serializers.CharField(help_text="The address, masked: `a***@example.com`.")
    resendAfter = serializers.IntegerField(help_text="Seconds before another code can be asked for.")


# --- users ----------------------------------------------------------------------------------

_METHODS = MfaMethod.choices


class UserSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    email = serializers.EmailField()
    mfaMethod = serializers.ChoiceField(source="mfa_method", choices=_METHODS)
    mfaEnrolled = serializers.SerializerMethodField(help_text="The second factor is ready: email, a confirmed app, or at least one passkey.")
    passkeyCount = serializers.SerializerMethodField(help_text="How many passkeys (WebAuthn credentials) the user has registered.")
    isActive = serializers.BooleanField(source="is_active")
    isAdmin = serializers.BooleanField(source="is_tenant_admin")
    lockedUntil = serializers.SerializerMethodField(help_text="While the account is locked: until when; else null.")
    createdAt = serializers.DateTimeField(source="created_at")
    lastLoginAt = serializers.DateTimeField(source="last_login", allow_null=True)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_mfaEnrolled(self, user) -> bool:
        return mfa_enrolled(user)

    @extend_schema_field(OpenApiTypes.INT)
    def get_passkeyCount(self, user) -> int:
        return passkey_count(user)

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_lockedUntil(self, user):
        if not lockout.is_locked(user):
            return None
        return serializers.DateTimeField().to_representation(user.locked_until)


class UserFilterInput(serializers.Serializer):
    """``?username=`` and ``?email=`` of the list (other query parameters belong to paging)."""

    username = serializers.CharField(required=False, max_length=300, allow_blank=True)
    email = serializers.CharField(required=False, max_length=300, allow_blank=True)


class UserCreateInput(InputSerializer):
    username = UsernameInputField(max_length=300)
    email = EmailInputField(max_length=300)
    password = StrictCharField(
        required=False, max_length=4096, trim_whitespace=False,
        help_text="Without one the user cannot sign in until a password is set: send them a reset link (`sendPasswordReset: true` on `PATCH Users/{id}`).",
    )
    mfaMethod = StrictChoiceField(source="mfa_method", choices=_METHODS, required=False, default=MfaMethod.NONE)
    isAdmin = StrictBooleanField(source="is_admin", required=False, default=False)


class UserUpdateInput(InputSerializer):
    username = UsernameInputField(required=False, max_length=300)
    email = EmailInputField(required=False, max_length=300)
    password = StrictCharField(required=False, max_length=4096, trim_whitespace=False, help_text="A new password; the user's refresh tokens stop working.")
    mfaMethod = StrictChoiceField(source="mfa_method", choices=_METHODS, required=False)
    isAdmin = StrictBooleanField(source="is_admin", required=False)
    isActive = StrictBooleanField(source="is_active", required=False)
    resetTOTP = StrictBooleanField(
        source="reset_mfa",
        required=False,
        help_text="true: clear the app secret, passkeys, recovery codes, pending email codes and remembered browsers, revoke refresh tokens, email the user. An app or passkey user sets it up again at next sign-in.",
    )
    unlock = StrictBooleanField(required=False, help_text="true: lift a lockout and restart the failure counters.")
    sendPasswordReset = StrictBooleanField(
        source="send_password_reset",
        required=False,
        help_text="true: email the user a link to set a new password (valid `passwordResetTtlSeconds`, single use); the way to onboard a user without knowing their password.",
    )


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AuditEvent.Kind.values)
    createdAt = serializers.DateTimeField(source="created_at")
    ip = serializers.IPAddressField(allow_null=True)
    userAgent = serializers.CharField(source="user_agent")
    channel = serializers.CharField(help_text="web, api, admin or cli.")
    actor = serializers.UUIDField(source="actor_id", allow_null=True, help_text="The admin who acted, for admin actions.")
    username = serializers.CharField()


# --- tenant settings ------------------------------------------------------------------------


def _range(field_name: str) -> str:
    bounds = policy_bounds(field_name)
    return f"{bounds['min_value']}–{bounds['max_value']}"


_LANGUAGES = [code for code, _name in Tenant._meta.get_field("default_language").choices]


class SettingsSerializer(serializers.Serializer):
    mfaMaxAttempts = serializers.IntegerField(source="mfa_max_attempts", help_text=f"Failed codes before lockout ({_range('mfa_max_attempts')}).")
    passwordMaxAttempts = serializers.IntegerField(
        source="password_max_attempts", help_text=f"Failed passwords before lockout ({_range('password_max_attempts')})."
    )
    lockoutSeconds = serializers.IntegerField(source="lockout_seconds", help_text=f"How long a lockout lasts ({_range('lockout_seconds')}).")
    mfaRequired = serializers.BooleanField(source="mfa_required", help_text="Users without a method must set one up at next sign-in.")
    emailCodeTtlSeconds = serializers.IntegerField(
        source="email_code_ttl_seconds", help_text=f"Lifetime of an emailed code ({_range('email_code_ttl_seconds')})."
    )
    emailResendSeconds = serializers.IntegerField(
        source="email_resend_seconds", help_text=f"Least gap between two emailed codes ({_range('email_resend_seconds')})."
    )
    issuer = serializers.CharField(source="effective_issuer", help_text="The issuer authenticator apps show (the tenant's name unless set).")
    passwordMinLength = serializers.IntegerField(
        source="password_min_length", help_text=f"The fewest characters a new password may have ({_range('password_min_length')})."
    )
    passwordResetTtlSeconds = serializers.IntegerField(
        source="password_reset_ttl_seconds", help_text=f"Lifetime of a password reset link ({_range('password_reset_ttl_seconds')})."
    )
    allowedMethods = serializers.ListField(
        source="allowed_methods", child=serializers.ChoiceField(choices=list(SECOND_FACTORS)),
        help_text="The second factors users may have: `totp`, `email`, `webauthn`. A user whose method is not in it chooses again at next sign-in.",
    )
    rememberDeviceDays = serializers.IntegerField(
        source="remember_device_days", help_text=f"Days a browser or device may skip the second factor after \"remember\" ({_range('remember_device_days')}; 0 = off)."
    )

    defaultLanguage = serializers.ChoiceField(
        source="default_language", choices=_LANGUAGES,
        help_text="The pages' and emails' language when the browser's Accept-Language names none Gatehouse has.",
    )


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "enum": ["totp", "email", "webauthn"]}, "minItems": 1, "maxItems": 3, "uniqueItems": True}
)
class AllowedMethodsField(serializers.ListField):
    pass


class SettingsInput(InputSerializer):
    defaultLanguage = StrictChoiceField(source="default_language", choices=_LANGUAGES, required=False)
    mfaMaxAttempts = StrictIntegerField(source="mfa_max_attempts", required=False, **policy_bounds("mfa_max_attempts"))
    passwordMaxAttempts = StrictIntegerField(source="password_max_attempts", required=False, **policy_bounds("password_max_attempts"))
    lockoutSeconds = StrictIntegerField(source="lockout_seconds", required=False, **policy_bounds("lockout_seconds"))
    mfaRequired = StrictBooleanField(source="mfa_required", required=False)
    emailCodeTtlSeconds = StrictIntegerField(source="email_code_ttl_seconds", required=False, **policy_bounds("email_code_ttl_seconds"))
    emailResendSeconds = StrictIntegerField(source="email_resend_seconds", required=False, **policy_bounds("email_resend_seconds"))
    passwordMinLength = StrictIntegerField(source="password_min_length", required=False, **policy_bounds("password_min_length"))
    passwordResetTtlSeconds = StrictIntegerField(
        source="password_reset_ttl_seconds", required=False, **policy_bounds("password_reset_ttl_seconds")
    )
    allowedMethods = AllowedMethodsField(
        source="allowed_methods", required=False, allow_empty=False, max_length=3,
        child=StrictChoiceField(choices=list(SECOND_FACTORS)),
        help_text="A non-empty list of distinct values among `totp`, `email`, `webauthn`.",
    )
    rememberDeviceDays = StrictIntegerField(source="remember_device_days", required=False, **policy_bounds("remember_device_days"))

    def validate_allowedMethods(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Give each method once.")
        return value
    issuer = StrictCharField(
        required=False,
        allow_blank=True,
        help_text=f"1–{Tenant._meta.get_field('issuer').max_length} characters, no colon; an empty string goes back to the tenant's name.",
    )

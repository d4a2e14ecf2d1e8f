"""Input and output shapes of the API (camelCase), kept apart: inputs check types and
refuse unknown keys; the rules (lengths of usernames, password strength, policy ranges)
live in the services and model validators they hand over to."""
import copy
from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import lockout
from accounts.models import AuditEvent, MfaMethod
from mfa.setup import mfa_enrolled

# --- strict fields: JSON types are not coerced (DRF would take 5 for "5" and "yes" for true)


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

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
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a whole number."}

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
    """Refuses keys it does not know, each named in ``fields``.

    Each instance gets its own field instances, as with DRF, but as shallow copies of one
    deep copy per class: DRF deep-copies the declared fields for every instance, which
    re-runs each field's ``__init__`` and is half the cost of validating a small body (the
    sign-in calls'). Only for flat fields (strings, numbers, booleans, choices): a field with
    a child field or a nested serializer keeps DRF's deep copy, since a shallow copy would
    share the child."""

    def get_fields(self):
        cls = type(self)
        prototypes = cls.__dict__.get("_field_prototypes")
        if prototypes is None:
            prototypes = copy.deepcopy(self._declared_fields)
            if any(hasattr(f, "child") or isinstance(f, serializers.BaseSerializer) for f in prototypes.values()):
                return prototypes
            cls._field_prototypes = prototypes
        return {name: copy.copy(field) for name, field in prototypes.items()}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
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


class MfaTokenInput(InputSerializer):
    mfaToken = StrictCharField(max_length=1024, help_text="The `mfaToken` of the login answer (valid 10 minutes).")


class VerifyInput(MfaTokenInput):
    code = StrictCharField(
        max_length=64,
        trim_whitespace=False,
        help_text="Six digits from the app or the email (spaces ignored), or an unused recovery code.",
    )


class RefreshInput(InputSerializer):
    refreshToken = StrictCharField(max_length=4096)


class TokensSerializer(serializers.Serializer):
    accessToken = serializers.CharField(help_text="JWT with `sub`, `tid`, `amr` and `admin`; send as `Authorization: Bearer …`.")
    refreshToken = serializers.CharField(help_text="Single use: `auth/token/refresh` answers a new pair and voids it.")
    tokenType = serializers.ChoiceField(choices=["Bearer"])
    expiresIn = serializers.IntegerField(help_text="Seconds until the access token expires.")


class VerifyResultSerializer(TokensSerializer):
    recoveryCodes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Only when this code finished setting up the authenticator app: shown once, store them safely.",
    )


class MfaChallengeSerializer(serializers.Serializer):
    mfaRequired = serializers.BooleanField(help_text="Always true: the password was right, a second factor is needed.")
    mfaToken = serializers.CharField(help_text="Pass to the `auth/mfa/…` calls; valid 10 minutes, for this sign-in only.")
    mfaMethod = serializers.ChoiceField(choices=["totp", "email"], help_text="The second factor this sign-in needs.")
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
    mfaEnrolled = serializers.SerializerMethodField(help_text="The second factor is ready: email, or a confirmed app.")
    isActive = serializers.BooleanField(source="is_active")
    isAdmin = serializers.BooleanField(source="is_tenant_admin")
    lockedUntil = serializers.SerializerMethodField(help_text="While the account is locked: until when; else null.")
    createdAt = serializers.DateTimeField(source="created_at")
    lastLoginAt = serializers.DateTimeField(source="last_login", allow_null=True)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_mfaEnrolled(self, user) -> bool:
        return mfa_enrolled(user)

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
    password = StrictCharField(required=False, max_length=4096, trim_whitespace=False, help_text="Without one the user cannot sign in until an admin sets one.")
    mfaMethod = StrictChoiceField(choices=_METHODS, required=False, default=MfaMethod.NONE)
    isAdmin = StrictBooleanField(required=False, default=False)

    def service_kwargs(self) -> dict:
        data = self.validated_data
        return {
            "username": data["username"],
            "email": data["email"],
            "password": data.get("password"),
            "mfa_method": data["mfaMethod"],
            "is_admin": data["isAdmin"],
        }


class UserUpdateInput(InputSerializer):
    username = UsernameInputField(required=False, max_length=300)
    email = EmailInputField(required=False, max_length=300)
    password = StrictCharField(required=False, max_length=4096, trim_whitespace=False, help_text="A new password; the user's refresh tokens stop working.")
    mfaMethod = StrictChoiceField(choices=_METHODS, required=False)
    isAdmin = StrictBooleanField(required=False)
    isActive = StrictBooleanField(required=False)
    resetTOTP = StrictBooleanField(
        required=False,
        help_text="true: clear the app secret, recovery codes and pending email codes, revoke refresh tokens, email the user. An app user sets the app up again at next sign-in.",
    )
    unlock = StrictBooleanField(required=False, help_text="true: lift a lockout and restart the failure counters.")

    _PLAIN = {"username": "username", "email": "email", "mfaMethod": "mfa_method", "isAdmin": "is_admin", "isActive": "is_active"}

    def service_kwargs(self) -> dict:
        data = self.validated_data
        kwargs = {snake: data[camel] for camel, snake in self._PLAIN.items() if camel in data}
        kwargs.update(password=data.get("password"), reset_mfa=data.get("resetTOTP", False), unlock=data.get("unlock", False))
        return kwargs


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

_POLICY = {
    "mfaMaxAttempts": "mfa_max_attempts",
    "passwordMaxAttempts": "password_max_attempts",
    "lockoutSeconds": "lockout_seconds",
    "mfaRequired": "mfa_required",
    "emailCodeTtlSeconds": "email_code_ttl_seconds",
    "emailResendSeconds": "email_resend_seconds",
    "issuer": "issuer",
}


class SettingsSerializer(serializers.Serializer):
    mfaMaxAttempts = serializers.IntegerField(source="mfa_max_attempts", help_text="Failed codes before lockout (1–100).")
    passwordMaxAttempts = serializers.IntegerField(source="password_max_attempts", help_text="Failed passwords before lockout (1–100).")
    lockoutSeconds = serializers.IntegerField(source="lockout_seconds", help_text="How long a lockout lasts (1–86400).")
    mfaRequired = serializers.BooleanField(source="mfa_required", help_text="Users without a method must set one up at next sign-in.")
    emailCodeTtlSeconds = serializers.IntegerField(source="email_code_ttl_seconds", help_text="Lifetime of an emailed code (1–600).")
    emailResendSeconds = serializers.IntegerField(source="email_resend_seconds", help_text="Least gap between two emailed codes (0–3600).")
    issuer = serializers.CharField(source="effective_issuer", help_text="The issuer authenticator apps show (the tenant's name unless set).")


class SettingsInput(InputSerializer):
    mfaMaxAttempts = StrictIntegerField(required=False)
    passwordMaxAttempts = StrictIntegerField(required=False)
    lockoutSeconds = StrictIntegerField(required=False)
    mfaRequired = StrictBooleanField(required=False)
    emailCodeTtlSeconds = StrictIntegerField(required=False)
    emailResendSeconds = StrictIntegerField(required=False)
    issuer = StrictCharField(required=False, allow_blank=True, help_text="1–64 characters, no colon; an empty string goes back to the tenant's name.")

    def service_kwargs(self) -> dict:
        return {_POLICY[key]: value for key, value in self.validated_data.items()}

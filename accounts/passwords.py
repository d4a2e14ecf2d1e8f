"""Passwords: the rules a new password must pass, and the reset links' tokens.

The rules are Django's password validators (``AUTH_PASSWORD_VALIDATORS`` names them, so
Django's own admin forms, ``validate_password`` and the services use the same list):
at least the tenant's ``password_min_length`` (``TenantMinimumLengthValidator``), at most
``MAX_LENGTH`` characters (Argon2 never sees more), not one of Django's 20,000 common
passwords, not like the username or the email. ``password_validate`` is the one call the
services make; its errors keep the validators' codes (``password_too_short`` …) and sit
under the field name the caller uses.

Reset tokens are Django's ``PasswordResetTokenGenerator`` (an HMAC of the user's state and
a timestamp) with the user's tenant, security stamp and password in the hashed value, so a
token dies when the password changes (it is single-use: the reset changes it), when the
MFA is reset or the sessions are ended (the stamp), and after the tenant's
``password_reset_ttl_seconds``. The link's token is ``<user id hex>-<Django's token>``.
No token is stored or logged anywhere: the mail is rendered by the notice worker, which
makes the token when it sends (``accounts.notifications``).
"""
import uuid

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.password_validation import MinimumLengthValidator
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.utils.crypto import salted_hmac
from django.utils.http import base36_to_int
from django.utils.translation import gettext as _, ngettext

from accounts.models import User

MAX_LENGTH = 1024
DEFAULT_MIN_LENGTH = 12  # a user not yet in a tenant (never saved that way): the model's default


# --- the rules -------------------------------------------------------------------------------


def min_length_for(user) -> int:
    tenant = getattr(user, "tenant", None) if user is not None and getattr(user, "tenant_id", None) else None
    return tenant.password_min_length if tenant is not None else DEFAULT_MIN_LENGTH


class TenantMinimumLengthValidator(MinimumLengthValidator):
    """Django's minimum length, read from the user's tenant (``passwordMinLength``)."""

    def validate(self, password, user=None):
        MinimumLengthValidator(min_length_for(user)).validate(password, user)

    def get_help_text(self):
        return _("Your password must be at least as long as your organisation requires (%(min)d characters unless it says otherwise).") % {
            "min": DEFAULT_MIN_LENGTH
        }


class MaximumLengthValidator:
    """At most ``MAX_LENGTH`` characters: longer input is refused, never cut short."""

    def validate(self, password, user=None):
        if len(password) > MAX_LENGTH:
            raise ValidationError(
                ngettext(
                    "This password is too long. It must contain at most %(max_length)d character.",
                    "This password is too long. It must contain at most %(max_length)d characters.",
                    MAX_LENGTH,
                ),
                code="password_too_long",
                params={"max_length": MAX_LENGTH},
            )

    def get_help_text(self):
        return _("Your password can contain at most %(max_length)d characters.") % {"max_length": MAX_LENGTH}


# The codes of the rules' errors: the API answers them as ``invalid_password``.
RULE_CODES = frozenset(
    {"password_too_short", "password_too_long", "password_too_common", "password_too_similar"}
)


def password_validate(password: str, user: User, *, field: str = "password") -> None:
    """Check ``password`` for ``user`` (whose tenant sets the minimum length) against every
    rule. Raises ``ValidationError({field: [...]})`` naming each rule broken (its code)."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({field: exc.error_list}) from None


def password_rules_text(tenant) -> list[str]:
    """The rules in words, for the pages that ask for a new password."""
    return [
        ngettext("At least %(n)d character.", "At least %(n)d characters.", tenant.password_min_length)
        % {"n": tenant.password_min_length},
        _("At most %(n)d characters.") % {"n": MAX_LENGTH},
        _("Not a commonly used password, and not like your username or email address."),
    ]


# --- reset tokens ----------------------------------------------------------------------------


class TenantPasswordResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's generator, keyed per tenant and user and bound to the state a reset changes.
    Its time limit is the user's tenant's ``password_reset_ttl_seconds``, within Django's
    ``PASSWORD_RESET_TIMEOUT`` (set to the policy's ceiling)."""

    key_salt = "gatehouse.accounts.passwords.TenantPasswordResetTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        login = "" if user.last_login is None else user.last_login.replace(microsecond=0, tzinfo=None)
        return f"{user.tenant_id}|{user.pk}|{user.password}|{user.security_stamp}|{login}|{user.email}|{user.is_active}|{timestamp}"

    def check_token(self, user, token):
        if not user.is_active or not super().check_token(user, token):
            return False
        issued = base36_to_int(token.split("-")[0])  # well-formed: super() parsed and verified it
        now = base36_to_int(self.make_token(user).split("-")[0])  # "now" in the tokens' own clock and units
        return now - issued <= min(user.tenant.password_reset_ttl_seconds, settings.PASSWORD_RESET_TIMEOUT)


reset_tokens = TenantPasswordResetTokenGenerator()


def reset_token_make(user: User) -> str:
    """A reset link's token for ``user`` as they are now."""
    return f"{user.pk.hex}-{reset_tokens.make_token(user)}"


def reset_token_user_id(token) -> uuid.UUID | None:
    """The user id a reset token names (unverified), or None when it is not shaped like one."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    head, _sep, rest = token.partition("-")
    if len(head) != 32 or not rest:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def reset_token_valid(user: User, token: str) -> bool:
    """Whether ``token`` (as ``reset_token_make`` makes it) is a live reset token of ``user``."""
    return reset_token_user_id(token) == user.pk and reset_tokens.check_token(user, token.partition("-")[2])


_STATE_SALT = "gatehouse.accounts.passwords.reset_state"


def reset_state(user: User) -> str:
    """A digest of what a reset token is bound to, without the time: a queued reset mail
    carries it, and the worker drops the mail when it no longer matches (the password was
    changed between the request and the send, so a link made then must not be mailed)."""
    login = "" if user.last_login is None else user.last_login.replace(microsecond=0, tzinfo=None)
    state = f"{user.tenant_id}|{user.pk}|{user.password}|{user.security_stamp}|{login}|{user.email}|{user.is_active}"
    return salted_hmac(_STATE_SALT, state, algorithm="sha256").hexdigest()

import argparse

from django.core.management.base import CommandParser

from accounts.management.base import GatehouseCommand
from tenants.models import SECOND_FACTORS, Tenant, policy_bounds
from tenants.services import POLICY_FIELDS, tenant_create


def bounded(field_name: str):
    """A whole number within the policy field's bounds (the Tenant model's validators)."""
    bounds = policy_bounds(field_name)
    low, high = bounds["min_value"], bounds["max_value"]

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is outside {low}–{high}")
        return number

    return parse


def method_list(value: str) -> list[str]:
    """``totp,email`` → ``["totp", "email"]`` (the model says which are allowed)."""
    return [method.strip() for method in value.split(",") if method.strip()]


# The whole-number policy fields, each an option named after it (--mfa-max-attempts, …).
BOUNDED_FIELDS = (
    "mfa_max_attempts", "password_max_attempts", "lockout_seconds", "email_code_ttl_seconds", "email_resend_seconds",
    "remember_device_days", "password_min_length", "password_reset_ttl_seconds",
)


class Command(GatehouseCommand):
    help = "Create a tenant. Prints the tenant id on the last line. A policy option left out takes the default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id", help="Slug: lowercase letters, digits and hyphens, 2–63 characters.")
        parser.add_argument("--name", required=True, help="Display name.")
        for field in BOUNDED_FIELDS:
            parser.add_argument(f"--{field.replace('_', '-')}", dest=field, type=bounded(field), help=str(Tenant._meta.get_field(field).help_text))
        parser.add_argument("--mfa-required", action="store_true", default=None, help="Users without MFA must set one up.")
        parser.add_argument("--allowed-methods", type=method_list, help=f"Comma-separated: {', '.join(SECOND_FACTORS)}.")
        parser.add_argument("--issuer", help=str(Tenant._meta.get_field("issuer").help_text))
        language = Tenant._meta.get_field("default_language")
        parser.add_argument("--default-language", choices=[code for code, _name in language.choices], help=str(language.help_text))

    def handle(self, *args, **options) -> None:
        policy = {field: options[field] for field in POLICY_FIELDS}  # an option for each (add_arguments)
        tenant = tenant_create(tenant_id=options["tenant_id"], name=options["name"], **policy)
        self.stdout.write(tenant.id)

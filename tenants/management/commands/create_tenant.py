import argparse

from django.core.management.base import CommandParser

from accounts.management.base import GatehouseCommand
from tenants.models import policy_bounds
from tenants.services import tenant_create


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


class Command(GatehouseCommand):
    help = "Create a tenant. Prints the tenant id on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id", help="Slug: lowercase letters, digits and hyphens, 2–63 characters.")
        parser.add_argument("--name", required=True, help="Display name.")
        for option, field, meaning in (
            ("--mfa-max-attempts", "mfa_max_attempts", "Failed codes before lockout"),
            ("--password-max-attempts", "password_max_attempts", "Failed passwords before lockout"),
            ("--lockout-seconds", "lockout_seconds", "Lockout period in seconds"),
        ):
            bounds = policy_bounds(field)
            parser.add_argument(option, type=bounded(field), help=f"{meaning} ({bounds['min_value']}–{bounds['max_value']}).")
        parser.add_argument("--mfa-required", action="store_true", default=None, help="Users without MFA must set one up.")

    def handle(self, *args, **options) -> None:
        tenant = tenant_create(
            tenant_id=options["tenant_id"],
            name=options["name"],
            mfa_max_attempts=options["mfa_max_attempts"],
            password_max_attempts=options["password_max_attempts"],
            lockout_seconds=options["lockout_seconds"],
            mfa_required=options["mfa_required"],
        )
        self.stdout.write(tenant.id)

from django.core.management.base import CommandParser

from accounts.management.base import GatehouseCommand
from tenants.services import tenant_create


def bounded(low: int, high: int):
    def parse(value: str) -> int:
        import argparse

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
        parser.add_argument("--mfa-max-attempts", type=bounded(1, 100), help="Failed codes before lockout (1–100).")
        parser.add_argument("--password-max-attempts", type=bounded(1, 100), help="Failed passwords before lockout (1–100).")
        parser.add_argument("--lockout-seconds", type=bounded(1, 86400), help="Lockout period (1–86400).")
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

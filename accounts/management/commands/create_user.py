from django.core.management.base import CommandError, CommandParser

from accounts.management.base import GatehouseCommand
from accounts.models import MfaMethod
from accounts.services import user_create
from tenants.models import Tenant


class Command(GatehouseCommand):
    help = "Create a user in a tenant. Prints the user id on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--password",
            help="Must pass the tenant's password rules. Without it the user has no usable password: "
            "send them a reset link (admin action, or sendPasswordReset on PATCH Users/ID) to let them choose one.",
        )
        parser.add_argument("--mfa", choices=MfaMethod.values, default=MfaMethod.NONE)
        parser.add_argument("--admin", action="store_true", help="Tenant admin (Users API, admin site).")
        parser.add_argument("--superuser", action="store_true", help="Platform operator: every tenant in the admin.")

    def handle(self, *args, **options) -> None:
        tenant = Tenant.objects.filter(pk=options["tenant_id"]).first()
        if tenant is None:
            raise CommandError(f"There is no tenant {options['tenant_id']!r}.")
        user = user_create(
            tenant=tenant,
            username=options["username"],
            email=options["email"],
            password=options["password"] or None,
            mfa_method=options["mfa"],
            is_admin=options["admin"] or options["superuser"],
            is_superuser=options["superuser"],
        )
        self.stdout.write(str(user.id))

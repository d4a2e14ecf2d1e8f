from django.db import transaction

from accounts.management.base import GatehouseCommand
from accounts.models import MfaMethod, User
from accounts.services import user_create
from tenants.models import Tenant
from tenants.services import tenant_create

DEMO_TENANT = "demo"
DEMO_USERS = [
    # username, email, password, method, admin
    ("admin", "admin@demo.example.com", "demo-admin-pass-1", MfaMethod.NONE, True),
    ("alice", "alice@demo.example.com", "demo-alice-pass-1", MfaMethod.TOTP, False),
    ("bob", "bob@demo.example.com", "demo-bob-pass-1", MfaMethod.EMAIL, False),
]


class Command(GatehouseCommand):
    help = "Create the demo tenant and its users if they are missing (idempotent). Prints the tenant id last."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            tenant = Tenant.objects.filter(pk=DEMO_TENANT).first() or tenant_create(tenant_id=DEMO_TENANT, name="Demo Company")
            for username, email, password, method, admin in DEMO_USERS:
                if not User.objects.filter(tenant=tenant, username=username).exists():
                    user_create(tenant=tenant, username=username, email=email, password=password, mfa_method=method, is_admin=admin)
        self.stdout.write("Demo tenant ready. Sign in at /tenant/demo/login/ with:")
        for username, _email, password, method, admin in DEMO_USERS:
            role = "tenant admin, " if admin else ""
            self.stdout.write(f"  {username:6} / {password:18} ({role}MFA: {MfaMethod(method).label})")
        self.stdout.write(tenant.id)

from django.core.management.base import CommandError, CommandParser

from accounts.management.base import GatehouseCommand
from tenants.models import SigningKey, Tenant
from tenants.signing import signing_key_rotate, token_lifetime_max


class Command(GatehouseCommand):
    help = (
        "Give a tenant a new signing key: it signs every token from now on; the old keys keep "
        "verifying, and stay in the JWKS, until every token they signed has expired. Prints the new key id last."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id", help="The tenant whose key to rotate.")
        parser.add_argument(
            "--algorithm",
            choices=SigningKey.Algorithm.values,
            help="The new key's algorithm (RS256 or ES256); by default the one the tenant signs with now (RS256 for a new tenant).",
        )

    def handle(self, *args, **options) -> None:
        tenant = Tenant.objects.filter(pk=options["tenant_id"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant_id']!r}.")
        key = signing_key_rotate(tenant=tenant, algorithm=options["algorithm"])
        hours = token_lifetime_max().total_seconds() / 3600
        self.stderr.write(f"{tenant.pk} now signs with {key.algorithm}. Older keys stay published for {hours:g} h (the longest token lifetime).")
        self.stdout.write(key.kid)

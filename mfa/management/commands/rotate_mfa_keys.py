from django.db import transaction

from accounts.management.base import GatehouseCommand
from mfa import crypto
from mfa.models import TOTPDevice


class Command(GatehouseCommand):
    help = "Re-encrypt every TOTP secret under the newest MFA_ENCRYPTION_KEYS key. Prints the count last."

    def handle(self, *args, **options) -> None:
        count = 0
        with transaction.atomic():
            for device in TOTPDevice.objects.select_for_update().only("pk", "secret_encrypted"):
                try:
                    token = crypto.reencrypt(device.secret_encrypted)
                except crypto.InvalidToken:
                    self.stderr.write(f"device {device.pk}: no configured key opens this secret; left as it is")
                    continue
                TOTPDevice.objects.filter(pk=device.pk).update(secret_encrypted=token)
                count += 1
        self.stdout.write(str(count))

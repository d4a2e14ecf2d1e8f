from django.db import transaction

from accounts.management.base import GatehouseCommand
from mfa import crypto
from mfa.models import TOTPDevice
from tenants.models import SigningKey
from tenants.signing import private_key_reencrypt


class Command(GatehouseCommand):
    help = (
        "Re-encrypt every TOTP secret and every tenant's private signing key under the newest "
        "MFA_ENCRYPTION_KEYS key. Prints the count of TOTP secrets last."
    )

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
            keys = 0
            for key in SigningKey.objects.select_for_update().only("pk", "private_key_encrypted"):
                try:
                    token = private_key_reencrypt(key)
                except crypto.InvalidToken:
                    self.stderr.write(f"signing key {key.pk}: no configured key opens it; left as it is")
                    continue
                SigningKey.objects.filter(pk=key.pk).update(private_key_encrypted=token)
                keys += 1
        self.stdout.write(f"{keys} signing keys re-encrypted")
        self.stdout.write(str(count))

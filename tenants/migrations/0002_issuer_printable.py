"""The issuer holds printable characters only (``tenants.models.validate_issuer``).

An issuer stored before this rule may hold a line break, a tab or an invisible character;
such a tenant could not save any other policy change (the whole row is validated). Each
such character becomes a space (runs of spaces become one, ends trimmed); an issuer left
empty goes back to the tenant's name, as an empty issuer always does."""
from django.db import migrations, models

import tenants.models


def printable_issuers(apps, schema_editor) -> None:
    """Rewrite only the rows whose issuer the new validator would refuse."""
    Tenant = apps.get_model("tenants", "Tenant")
    for tenant in Tenant.objects.exclude(issuer="").only("pk", "issuer"):
        if tenant.issuer.isprintable():
            continue
        tenant.issuer = " ".join("".join(c if c.isprintable() else " " for c in tenant.issuer).split())
        tenant.save(update_fields=["issuer"])


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tenant",
            name="issuer",
            field=models.CharField(
                blank=True,
                help_text="The name authenticator apps show next to the account. Leave empty to use the tenant's name. At most 64 printable characters, no colon.",
                max_length=64,
                validators=[tenants.models.validate_issuer],
            ),
        ),
        migrations.RunPython(printable_issuers, migrations.RunPython.noop),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    """``UnknownLogin`` is ``UnknownUsername``: the counters of a username with no account
    (the code says "sign in" for the act; the row is about the name)."""

    dependencies = [
        ("accounts", "0005_security_stamp_last_code_refresh_chains"),
    ]

    operations = [
        migrations.RenameModel("UnknownLogin", "UnknownUsername"),
        migrations.RemoveConstraint("unknownusername", "accounts_unknownlogin_unique_per_tenant"),
        migrations.AddConstraint(
            "unknownusername",
            models.UniqueConstraint(fields=["tenant", "username"], name="accounts_unknownusername_unique_per_tenant"),
        ),
    ]

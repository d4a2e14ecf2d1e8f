"""Leave room in each page of the two rows every sign-in updates: the user (last_login, the
failure counters) and the authenticator app (its last step). On PostgreSQL an UPDATE whose
new row version fits on the same page and changes no indexed column is a HOT update: no
index entry is written and the old version is pruned in place. With full pages (the default
fillfactor of 100, or rows loaded in bulk) every such UPDATE moves the row to another page
and writes an entry into each of the table's indexes. Nothing to do on other databases."""
from django.db import migrations

TABLES = {"accounts_user": 85, "mfa_totpdevice": 70}


def set_fillfactor(apps, schema_editor, reset=False):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, fillfactor in TABLES.items():
        option = "RESET (fillfactor)" if reset else f"SET (fillfactor = {fillfactor})"
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} {option}")


def reset_fillfactor(apps, schema_editor):
    set_fillfactor(apps, schema_editor, reset=True)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_drop_unused_jti_pattern_index"),
        ("mfa", "0001_initial"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]

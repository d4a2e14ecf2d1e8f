"""Drop the ``varchar_pattern_ops`` copy of the jti index that Django adds on PostgreSQL to
simplejwt's outstanding-token table. It serves only ``LIKE 'prefix%'``, which nothing runs
on a jti; the unique index on jti stays. Every sign-in and refresh inserts a row there, so
one index fewer is one index write fewer. Nothing to do on other databases."""
from django.db import migrations

FIND = """
SELECT indexname FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = 'token_blacklist_outstandingtoken'
  AND indexdef LIKE '%%(jti varchar_pattern_ops)%%'
"""


def drop_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FIND)
        names = [row[0] for row in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_audit_indexes"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [migrations.RunPython(drop_pattern_index, migrations.RunPython.noop, elidable=True)]

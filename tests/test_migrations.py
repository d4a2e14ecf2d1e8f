"""The models and their migrations agree: a model change without its migration fails here."""
import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration(capsys):
    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=1)
    except SystemExit as exc:  # --check exits non-zero when a migration is missing
        pytest.fail(f"missing migration: {capsys.readouterr().out}; exit {exc.code}")


def test_the_rows_every_sign_in_updates_have_room_for_hot_updates(postgres):
    """accounts 0004: a user's and an app's UPDATE can stay on its page (no index writes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname IN ('accounts_user', 'mfa_totpdevice')")
        options = dict(cursor.fetchall())
    assert options == {"accounts_user": ["fillfactor=85"], "mfa_totpdevice": ["fillfactor=70"]}

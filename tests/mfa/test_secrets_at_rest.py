"""Secrets at rest: the TOTP secret only encrypted (and rotatable), one-time codes only hashed."""
from datetime import datetime, timezone as dt_timezone
from io import StringIO

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection

from accounts.models import MfaMethod
from mfa import crypto
from mfa.models import TOTPDevice
from mfa.verify import code_verify
from tests.accounts.flows import (
    code_from_mail, code_now, is_signed_in, manual_key, password_step, recovery_codes_on_page, setup_url, verify_url,
)
from tests.conftest import FIXED_SECRET, confirm_totp, freeze_at

NOW = datetime(2030, 5, 5, 5, 5, 5, tzinfo=dt_timezone.utc)


frozen = freeze_at(NOW)


def tables_containing(needle: str) -> list[str]:
    """Every ``table.column`` of every table in the database whose text holds ``needle``."""
    qn = connection.ops.quote_name
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                cursor.execute(
                    f"SELECT COUNT(*) FROM {qn(table)} WHERE LOWER(CAST({qn(column.name)} AS TEXT)) LIKE %s",
                    [f"%{needle.lower()}%"],
                )
                if cursor.fetchone()[0]:
                    hits.append(f"{table}.{column.name}")
    return hits


def test_the_scanner_finds_what_is_there(user):
    # The scan below is only worth something if it can find a planted value.
    from accounts.services import user_update

    user_update(user=user, email="needle-7f3a@example.com")
    assert "accounts_user.email" in tables_containing("NEEDLE-7F3A")


def test_the_totp_secret_is_nowhere_in_plain_form(client, user_factory, frozen):
    user = user_factory("secretive", mfa_method=MfaMethod.TOTP)
    password_step(client, user.tenant_id, "secretive")
    key = manual_key(client.get(setup_url(user.tenant_id)))
    codes = recovery_codes_on_page(client.post(setup_url(user.tenant_id), {"code": code_now(key)}, follow=True))
    assert is_signed_in(client, user) and len(codes) == 10
    for form in (key, " ".join(key[i:i + 4] for i in range(0, 32, 4))):
        assert tables_containing(form) == []
    # The recovery codes waiting in the session to be saved are encrypted there.
    for code in codes:
        assert tables_containing(code) == []
        assert all(code not in str(session.get_decoded()) for session in Session.objects.all())
    # Nor inside the (encoded) session data.
    for session in Session.objects.all():
        assert key not in str(session.get_decoded())
    # Recovery codes: only salted hashes.
    for c in codes:
        assert tables_containing(c) == [] and tables_containing(c.replace("-", "")) == []


def test_emailed_codes_are_nowhere_in_plain_form(client, email_user, frozen):
    from django.core import mail

    password_step(client, email_user.tenant_id, "emma")
    client.get(verify_url(email_user.tenant_id))
    sent = code_from_mail(mail.outbox[-1])
    from mfa.models import EmailCode

    row = EmailCode.objects.get(user=email_user)
    assert sent not in row.code_hash and len(row.code_hash) == 64


def test_encrypted_secrets_differ_each_time(settings):
    settings.MFA_ENCRYPTION_KEYS = ["k1"]
    a, b = crypto.encrypt(FIXED_SECRET), crypto.encrypt(FIXED_SECRET)
    assert a != b and FIXED_SECRET not in a
    assert crypto.decrypt(a) == crypto.decrypt(b) == FIXED_SECRET


def test_without_keys_the_secret_key_is_used(settings):
    settings.MFA_ENCRYPTION_KEYS = []
    token = crypto.encrypt(FIXED_SECRET)
    assert crypto.decrypt(token) == FIXED_SECRET
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789"
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(token)


def test_a_wrong_key_cannot_decrypt(settings):
    settings.MFA_ENCRYPTION_KEYS = ["right"]
    token = crypto.encrypt(FIXED_SECRET)
    settings.MFA_ENCRYPTION_KEYS = ["wrong"]
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(token)


def test_older_keys_still_decrypt(settings):
    settings.MFA_ENCRYPTION_KEYS = ["old"]
    token = crypto.encrypt(FIXED_SECRET)
    settings.MFA_ENCRYPTION_KEYS = ["new", "old"]
    assert crypto.decrypt(token) == FIXED_SECRET


def test_rotation_re_encrypts_under_the_newest_key(user_factory, settings, frozen):
    settings.MFA_ENCRYPTION_KEYS = ["old-key"]
    users = [user_factory(f"rot{i}", mfa_method=MfaMethod.TOTP) for i in range(3)]
    for u in users:
        confirm_totp(u)
    before = dict(TOTPDevice.objects.values_list("pk", "secret_encrypted"))
    settings.MFA_ENCRYPTION_KEYS = ["new-key", "old-key"]
    out, err = StringIO(), StringIO()
    call_command("rotate_mfa_keys", stdout=out, stderr=err)
    assert out.getvalue().strip().splitlines()[-1] == "3" and err.getvalue() == ""
    after = dict(TOTPDevice.objects.values_list("pk", "secret_encrypted"))
    assert all(before[pk] != after[pk] for pk in before)
    # The old key can go: every secret opens, and signing in works.
    settings.MFA_ENCRYPTION_KEYS = ["new-key"]
    for token in after.values():
        assert crypto.decrypt(token) == FIXED_SECRET
    assert code_verify(user=users[0], code=code_now(), unix_time=NOW.timestamp()).amr == ["pwd", "otp", "mfa"]


def test_rotation_leaves_a_secret_no_key_opens_and_says_so(user_factory, settings):
    settings.MFA_ENCRYPTION_KEYS = ["lost-key"]
    confirm_totp(user_factory("orphan", mfa_method=MfaMethod.TOTP))
    settings.MFA_ENCRYPTION_KEYS = ["k2"]
    confirm_totp(user_factory("fine", mfa_method=MfaMethod.TOTP))
    settings.MFA_ENCRYPTION_KEYS = ["k3", "k2"]
    out, err = StringIO(), StringIO()
    call_command("rotate_mfa_keys", stdout=out, stderr=err)
    assert out.getvalue().strip().splitlines()[-1] == "1"
    assert "no configured key opens" in err.getvalue()


def test_keyed_and_salted_hashes():
    assert crypto.keyed_hash("x", purpose="a") == crypto.keyed_hash("x", purpose="a")
    assert crypto.keyed_hash("x", purpose="a") != crypto.keyed_hash("x", purpose="b")
    stored = crypto.salted_hash("abcd1234efgh")
    assert crypto.salted_hash_matches("abcd1234efgh", stored)
    assert not crypto.salted_hash_matches("abcd1234efgx", stored)
    assert crypto.salted_hash("abcd1234efgh") != stored  # a fresh salt each time

"""Authorization codes are stored only as keyed hashes (``oidc.fields.KeyedHashField``): the
database holds no code, the flow still works, the stored hash is no code, a loaded row saved
again keeps its hash, and the migration hashes the codes of sign-ins in flight. And what
django-oauth-toolkit keeps of the tokens (``COMPLIANT_BCP_RFC9700_TOKEN_STORAGE``), as
docs/security.md states it."""
import hashlib
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import connection
from oauth2_provider.models import get_access_token_model, get_id_token_model, get_refresh_token_model

from mfa.crypto import keyed_hash
from oidc.fields import StoredHash
from oidc.models import Grant
from tests.oidc.helpers import code_for, exchange, pkce_pair
from tests.oidc.test_provider import full_sign_in, rp  # noqa: F401 — the fixture


def stored_codes() -> list[str]:
    """The code column as the database holds it, read past the model field."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM oidc_grant ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def whole_table() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM oidc_grant")
        return repr(cursor.fetchall())


def test_the_database_holds_only_a_keyed_hash_of_the_code(client, tenant, totp_user, rp):  # noqa: F811
    verifier, code = full_sign_in(client, "acme", rp)
    assert stored_codes() == [keyed_hash(code, purpose="oidc-code")]
    assert code not in whole_table()
    assert exchange(client, "acme", rp.client_id, code, verifier).status_code == HTTPStatus.OK
    # Marking the code used (an UPDATE of other columns) leaves the hash as it was.
    assert stored_codes() == [keyed_hash(code, purpose="oidc-code")]
    assert code not in whole_table()


def test_the_stored_hash_presented_as_a_code_is_refused(client, tenant, totp_user, rp):  # noqa: F811
    verifier, code = full_sign_in(client, "acme", rp)
    (stored,) = stored_codes()
    refused = exchange(client, "acme", rp.client_id, stored, verifier)
    assert refused.status_code == HTTPStatus.BAD_REQUEST and refused.json()["error"] == "invalid_grant"
    # Nothing was spent by the attempt: the real code still works, once.
    assert exchange(client, "acme", rp.client_id, code, verifier).status_code == HTTPStatus.OK
    assert Grant.objects.get().used_at is not None


def test_a_loaded_row_saved_again_keeps_its_hash(client, tenant, totp_user, rp):  # noqa: F811
    verifier, code = full_sign_in(client, "acme", rp)
    before = stored_codes()
    grant = Grant.objects.get(code=code)
    assert isinstance(grant.code, StoredHash) and grant.code == before[0]
    grant.save()  # every column written again, the code included
    grant.refresh_from_db()
    grant.save(update_fields=["code"])
    assert stored_codes() == before
    assert Grant.objects.values_list("code", flat=True).get() == before[0]
    body = exchange(client, "acme", rp.client_id, code, verifier)
    assert body.status_code == HTTPStatus.OK, body.content


def test_a_code_is_found_by_its_value_never_by_its_hash(client, tenant, totp_user, rp):  # noqa: F811
    _verifier, code = full_sign_in(client, "acme", rp)
    stored = keyed_hash(code, purpose="oidc-code")
    assert Grant.objects.filter(code=code).exists()
    assert not Grant.objects.filter(code=stored).exists()  # a plain str is always hashed
    assert Grant.objects.filter(code=StoredHash(stored)).exists()  # a value read back is not


@pytest.mark.django_db(transaction=True)
def test_the_migration_hashes_the_codes_of_sign_ins_in_flight_and_its_reverse_drops_them(client, tenant, totp_user, rp):  # noqa: F811
    """A code made by the code before the migration (in clear) still exchanges after it."""
    try:
        call_command("migrate", "oidc", "0001_initial", verbosity=0)
        verifier, code = full_sign_in(client, "acme", rp)
        Grant.objects.update(code=StoredHash(code))  # as the code before the migration stored it
        assert stored_codes() == [code]
        call_command("migrate", "oidc", verbosity=0)
        assert stored_codes() == [keyed_hash(code, purpose="oidc-code")]
        response = exchange(client, "acme", rp.client_id, code, verifier)
        assert response.status_code == HTTPStatus.OK, response.content
        # Back to clear codes: the hashes would be taken as codes, so the rows go.
        assert code_for(client, "acme", rp.client_id, pkce_pair()[1])["code"]
        assert len(stored_codes()) == 2
        call_command("migrate", "oidc", "0001_initial", verbosity=0)
        assert stored_codes() == []
    finally:
        call_command("migrate", "oidc", verbosity=0)



def test_tokens_are_kept_as_unkeyed_sha256_checksums_with_an_empty_token_column(client, tenant, totp_user, rp):  # noqa: F811
    verifier, code = full_sign_in(client, "acme", rp)
    body = exchange(client, "acme", rp.client_id, code, verifier).json()
    for model, raw in ((get_access_token_model(), body["access_token"]), (get_refresh_token_model(), body["refresh_token"])):
        assert list(model.objects.values_list("token", "token_checksum")) == [("", hashlib.sha256(raw.encode()).hexdigest())]
    # The ID token itself is not kept, only its jti.
    id_token = get_id_token_model().objects.get()
    assert body["id_token"] not in repr(get_id_token_model().objects.values().get()) and id_token.jti

"""A model field that keeps a keyed hash of a secret in place of the secret.

Django passes every value bound for a column through the field's ``get_prep_value``: the
value of an instance being saved and the right-hand side of a look-up alike. So when that
method hashes, ``Grant.objects.create(code=raw)`` stores the hash and every
``Grant.objects.filter(code=raw)`` (django-oauth-toolkit's validator has about eight, ours
three) finds the row by the hash, with no change to the code that looks.

A value read back from the database is already a hash: ``from_db_value`` marks it
(``StoredHash``) so that saving a loaded row again stores it as it is, not hashed twice.
A value that comes from a request is always a plain ``str`` and is always hashed, so the
stored hash itself, presented as a code by someone who read the database, finds nothing.
"""
from django.db import models

from mfa.crypto import keyed_hash


class StoredHash(str):
    """A value that is already the column's hash (it was read from the database)."""


class KeyedHashField(models.CharField):
    """Stores ``mfa.crypto.keyed_hash(value, purpose=purpose)``: HMAC-SHA256 under a key
    derived from ``SECRET_KEY``, 64 hexadecimal characters."""

    def __init__(self, *args, purpose: str, **kwargs):
        self.purpose = purpose
        kwargs.setdefault("max_length", 64)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        return None if value is None else StoredHash(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return None
        if isinstance(value, StoredHash):
            return str(value)
        return keyed_hash(value, purpose=self.purpose)

"""Argon2id with the parameters of the environment (OWASP's minimum by default).

Django's own Argon2 hasher has fixed class attributes; this one reads
``ARGON2_MEMORY_KIB``, ``ARGON2_TIME_COST`` and ``ARGON2_PARALLELISM`` when it runs, and
Django's ``must_update`` then re-hashes a password stored with other parameters at the
next successful sign-in. The algorithm name stays ``argon2``, so hashes are Django's.
"""
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    @property
    def time_cost(self) -> int:
        return settings.ARGON2_TIME_COST

    @property
    def memory_cost(self) -> int:
        return settings.ARGON2_MEMORY_KIB

    @property
    def parallelism(self) -> int:
        return settings.ARGON2_PARALLELISM

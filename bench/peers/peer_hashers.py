"""Argon2id with the same parameters as Gatehouse (ARGON2_MEMORY_KIB / TIME_COST / PARALLELISM)."""
import os

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = int(os.environ.get("ARGON2_TIME_COST", "2"))
    memory_cost = int(os.environ.get("ARGON2_MEMORY_KIB", "19456"))
    parallelism = int(os.environ.get("ARGON2_PARALLELISM", "1"))

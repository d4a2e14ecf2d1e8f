"""Settings for the test suite: the real settings, with a throwaway key and a cheap hash.

Everything else (DATABASE_URL, CACHE_URL) comes from the environment exactly as in
production, so `DATABASE_URL=postgres://… make test` runs the same suite on PostgreSQL.
"""
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("EMAIL_URL", "memorymail://")  # required outside DEBUG (config/settings.py)

from .settings import *  # noqa: E402,F403

# Argon2id still, but cheap: the suite hashes thousands of passwords.
ARGON2_MEMORY_KIB = 1024
ARGON2_TIME_COST = 1
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Never scan a folder that collectstatic (e2e, bench) may be rewriting meanwhile.
STATIC_ROOT = BASE_DIR / ".pytest-static-root-unused"  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "10000/min"}}  # noqa: F405

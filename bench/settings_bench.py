"""Settings for `make bench`: the product's settings, plus one empty view for the baseline.

The empty view (``/bench/empty/``) lives only in the bench's URLconf, never in the
product's. Everything else (middleware, sessions, hashers, throttles, DEBUG=false) is
``config.settings`` as read from the environment the bench script sets.
"""
import os

from config.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls"
# collectstatic for the bench goes beside the bench's other data, not into the tree's staticfiles/.
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT", STATIC_ROOT)  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # Two gunicorn workers writing one SQLite file: without IMMEDIATE transactions a reader
    # that turns writer gets "database is locked" at once (a 500) instead of waiting its turn.
    # The product's settings do not do this yet (see the bench report); PostgreSQL needs nothing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(  # noqa: F405
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )

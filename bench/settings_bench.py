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

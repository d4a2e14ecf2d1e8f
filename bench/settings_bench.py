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
# The bench runs one server per dataset at once on its one Redis db: each keeps its own cache
# keys, so no count or cached row of one dataset is ever read by the other's server.
CACHES["default"]["KEY_PREFIX"] = os.environ.get("BENCH_CACHE_KEY_PREFIX", "")  # noqa: F405

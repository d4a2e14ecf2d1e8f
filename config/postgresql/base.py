"""Django's PostgreSQL backend, with its per-request health check skipped for a connection
that was seen healthy less than ``ALIVE_BYPASS_SECONDS`` ago.

``CONN_HEALTH_CHECKS`` costs a ``SELECT 1`` round trip at the start of every request that
touches the database. HikariCP (Keycloak's pool, through Quarkus/Agroal alike) skips that
check when the connection was used within ``aliveBypassWindowMs`` (500 ms): a connection
that just finished a request without a database error is as good as one that answered
``SELECT 1``. A connection idle for longer (an idle worker, a database or load balancer that
dropped it meanwhile) is still checked first, so a worker rides through a database restart
without answering an error for a stale connection. One that breaks inside the window gives
that one request a 503 and is closed at its end, as without health checks.
"""
import time

from django.db.backends.postgresql import base

ALIVE_BYPASS_SECONDS = 0.5
_clock = time.monotonic


class DatabaseWrapper(base.DatabaseWrapper):
    seen_healthy_at = float("-inf")

    def close_if_health_check_failed(self):
        if self.connection is not None and _clock() - self.seen_healthy_at < ALIVE_BYPASS_SECONDS:
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self):
        # Called when a request starts and when it ends. A cursor made since the last call
        # marks the health check as done; no database error since: the connection worked.
        worked = self.connection is not None and self.health_check_done and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if worked and self.connection is not None:
            self.seen_healthy_at = _clock()

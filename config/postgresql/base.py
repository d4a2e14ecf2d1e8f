"""Django's PostgreSQL backend with two changes for the sign-in hot path (and a third that
keeps the query log whole: a prepared statement is logged with its text).

1. Its per-request health check is skipped for a connection seen healthy less than
   ``ALIVE_BYPASS_SECONDS`` ago. ``CONN_HEALTH_CHECKS`` costs a ``SELECT 1`` round trip at
   the start of every request that touches the database. HikariCP (the pool behind Keycloak
   and most of the JVM) skips that check for a connection used within
   ``aliveBypassWindowMs`` (500 ms): a connection that just finished a request without a
   database error is as good as one that answered ``SELECT 1``. One idle for longer (an idle
   worker; a database or load balancer that dropped it meanwhile) is still checked first, so
   a worker rides through a database restart without an error for a stale connection. One
   that breaks inside the window gives that request a 503 and is closed at its end, as
   without health checks.

2. ``prepared_cursor()``: a cursor that binds parameters on the server, so psycopg prepares
   a statement once it has run ``prepare_threshold`` times on the connection (``OPTIONS``,
   set in ``config.settings``), and the server then plans it once per connection, not on
   every call. ``config.sql`` runs the hot path's statements on it. Measured: the refresh
   rotation (one statement of three CTEs) costs the server ~540 µs of CPU planned every time
   and ~120 µs prepared, and the client ~340 µs against ~170 µs. Django's own cursors (the
   ORM) keep client-side binding, which never prepares.
"""
import time

from django.db.backends.postgresql import base, operations
from psycopg import errors
from psycopg.pq import Format

ALIVE_BYPASS_SECONDS = 0.5
_clock = time.monotonic


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        # A prepared statement leaves psycopg no query text; compose it as Django does for
        # server-side binding, so the query log and CaptureQueriesContext still show it.
        query = super().last_executed_query(cursor, sql, params)
        if query is None and params is not None:
            try:
                query = self.compose_sql(sql, params)
            except errors.DataError:
                return None
        return query


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    seen_healthy_at = float("-inf")
    _server_binding = False

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

    def prepared_cursor(self):
        """Like ``cursor()`` (Django's wrapper: errors, query logging), binding on the server."""
        self._server_binding = True
        try:
            return self.cursor()
        finally:
            self._server_binding = False

    def create_cursor(self, name=None):
        if name or not self._server_binding:
            return super().create_cursor(name)
        cursor = base.ServerBindingCursor(self.connection)
        # As Django's create_cursor: the connection's time zone for timestamptz, if it differs.
        if self.timezone != self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT).timezone:
            base.register_tzloader(self.timezone, cursor)
        return cursor

"""config.postgresql: Django's health check, skipped for a connection seen healthy < 0.5 s ago;
the hot path's statements prepared on the server."""
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from config import sql
from config.postgresql import base as pgbase
from tenants.models import Tenant


@pytest.fixture
def requests(postgres, monkeypatch):
    """A fake clock, the health checks counted, and one request: Django's request_started and
    request_finished handlers around an optional query (or a database error)."""
    conn = connections["default"]
    now = [1000.0]
    checks = []
    real = conn.is_usable
    monkeypatch.setattr(pgbase, "_clock", lambda: now[0])
    monkeypatch.setattr(conn, "is_usable", lambda: checks.append(now[0]) or real())
    conn.ensure_connection()
    conn.close_if_unusable_or_obsolete()  # as a request left it; then last seen long ago
    monkeypatch.setattr(conn, "seen_healthy_at", float("-inf"))

    def request(*, query=True, error=False):
        conn.close_if_unusable_or_obsolete()
        if query:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
        if error:
            conn.errors_occurred = True
        conn.close_if_unusable_or_obsolete()

    def later(seconds):
        now[0] += seconds

    return request, later, checks


pytestmark = pytest.mark.django_db(transaction=True)


def test_a_connection_used_within_the_window_is_not_checked_again(requests):
    request, later, checks = requests
    request()
    assert len(checks) == 1  # never seen healthy: checked
    later(0.4)
    request()
    later(0.4)
    request()
    assert len(checks) == 1  # each request renews the window


def test_a_connection_idle_for_longer_is_checked(requests):
    request, later, checks = requests
    request()
    later(0.6)
    request()
    assert len(checks) == 2


def test_a_request_without_a_query_proves_nothing(requests):
    request, later, checks = requests
    request()
    later(0.3)
    request(query=False)
    later(0.3)
    request()
    assert len(checks) == 2  # 0.6 s since the connection last worked


def test_a_request_with_a_database_error_is_not_trusted_but_checked_at_its_end(requests):
    request, later, checks = requests
    request()
    later(0.3)
    request(error=True)
    assert checks == [1000.0, 1000.3]  # Django's own check at the request's end, not bypassed


def test_the_hot_path_statements_are_prepared_and_the_orm_s_are_not(postgres, tenant):
    conn = connections["default"]

    def prepared() -> set[str]:
        with conn.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {row[0] for row in cursor.fetchall()}

    before = prepared()
    for _ in range(conn.settings_dict["OPTIONS"]["prepare_threshold"] + 1):
        assert sql.get(Tenant, pk=tenant.pk).name == tenant.name
        assert Tenant.objects.filter(pk=tenant.pk).values_list("name", flat=True).get() == tenant.name
    new = prepared() - before
    assert any(s.startswith('SELECT "id", "name"') and 'FROM "tenants_tenant"' in s for s in new), new
    assert not any("tenants_tenant" in s and "LIMIT" in s for s in new)  # the ORM's .get() binds on the client


def test_a_prepared_statement_still_shows_in_the_query_log(postgres, tenant):
    conn = connections["default"]
    for _ in range(conn.settings_dict["OPTIONS"]["prepare_threshold"] + 2):
        with CaptureQueriesContext(conn) as queries:
            sql.get(Tenant, pk=tenant.pk)
    assert queries.captured_queries[0]["sql"].startswith('SELECT "id", "name"')
    assert f"'{tenant.pk}'" in queries.captured_queries[0]["sql"]

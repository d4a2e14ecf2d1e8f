"""Request ids, the access line, and the JSON format (config.logging, config.middleware)."""
import json
import logging
import re
from http import HTTPStatus

import pytest
from django.test import Client

from config.logging import JsonFormatter, OneLineFormatter, RequestIdFilter, request_id
from tests.accounts.flows import login_url
from tests.test_outage import database_down

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


def records_of(caplog, rid: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "request_id", None) == rid]


def test_every_answer_carries_a_fresh_request_id(client, tenant):
    ids = {client.get(login_url(tenant.id))["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(HEX_ID.fullmatch(i) for i in ids)
    assert HEX_ID.fullmatch(client.get("/healthz")["X-Request-ID"])


def test_the_clients_request_id_is_ignored_unless_the_proxy_is_trusted(client, tenant, settings):
    settings.TRUST_X_REQUEST_ID = False
    assert client.get(login_url(tenant.id), HTTP_X_REQUEST_ID="chosen-by-client")["X-Request-ID"] != "chosen-by-client"
    settings.TRUST_X_REQUEST_ID = True
    assert client.get(login_url(tenant.id), HTTP_X_REQUEST_ID="lb-1234.abc")["X-Request-ID"] == "lb-1234.abc"


@pytest.mark.parametrize("incoming", ["two words", "line\nbreak", "quote\"d", "x" * 129, "", "ü"])
def test_a_trusted_request_id_that_is_not_an_id_is_replaced(client, tenant, settings, incoming):
    settings.TRUST_X_REQUEST_ID = True
    assert HEX_ID.fullmatch(client.get(login_url(tenant.id), HTTP_X_REQUEST_ID=incoming)["X-Request-ID"])


def test_one_access_line_per_request_without_the_query_string(client, tenant, caplog):
    caplog.set_level(logging.INFO, logger="gatehouse.access")
    response = client.get(login_url(tenant.id) + "?next=/secret-token-in-query")
    rid = response["X-Request-ID"]
    lines = [r for r in caplog.records if r.name == "gatehouse.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.path, line.status) == ("GET", login_url(tenant.id), HTTPStatus.OK)
    assert line.duration_ms >= 0 and line.request_id == rid and line.levelno == logging.INFO
    assert "secret-token-in-query" not in line.getMessage()
    assert line.getMessage().startswith(f"GET {login_url(tenant.id)} 200 ")


def test_probe_lines_are_debug_only(client, db, caplog):
    caplog.set_level(logging.DEBUG, logger="gatehouse.access")
    client.get("/healthz")
    assert [r.levelno for r in caplog.records if r.name == "gatehouse.access"] == [logging.DEBUG]


def test_every_line_of_a_request_has_its_id_even_djangos_after_the_middleware(client, tenant, caplog):
    """A 503 during a database outage: Django's own "Service Unavailable" line is written after
    the middleware returned; it carries the request's id too. Once the answer is closed, lines
    carry none."""
    with database_down():
        response = client.get(login_url(tenant.id))
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    rid = response["X-Request-ID"]
    names = {r.name for r in records_of(caplog, rid)}
    assert {"django.request", "gatehouse.access"} <= names, [(r.name, getattr(r, "request_id", None)) for r in caplog.records]
    assert all(getattr(r, "request_id", rid) == rid for r in caplog.records)
    assert request_id.get() == "-"


def json_line(record: logging.LogRecord) -> dict:
    RequestIdFilter().filter(record) if not hasattr(record, "request_id") else None
    text = JsonFormatter().format(record)
    assert "\n" not in text
    return json.loads(text)


def test_the_json_format_is_one_object_per_line_with_fixed_keys():
    try:
        raise ValueError("password=hunter2")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Service Unavailable: %s", ("/x/",), exc_info)
    record.request = "<WSGIRequest: GET '/x/?token=abc'>"  # Django passes the request in extra
    record.status_code = 503
    token = request_id.set("rid-1")
    try:
        data = json_line(record)
    finally:
        request_id.reset(token)
    assert set(data) == {"time", "level", "logger", "message", "request_id", "status_code", "exc_info"}
    assert data["request_id"] == "rid-1" and data["level"] == "ERROR" and data["message"] == "Service Unavailable: /x/"
    assert data["exc_info"].startswith("[ValueError at test_logging.py:")
    assert "hunter2" not in json.dumps(data) and "token=abc" not in json.dumps(data)


def test_the_json_lines_of_a_request_parse_and_carry_its_id(client, tenant, caplog):
    caplog.set_level(logging.INFO)
    with database_down():
        rid = client.get(login_url(tenant.id))["X-Request-ID"]
    lines = [json_line(r) for r in records_of(caplog, rid)]
    assert len(lines) >= 2 and all(line["request_id"] == rid for line in lines)
    access = [line for line in lines if line["logger"] == "gatehouse.access"]
    assert access == [{**access[0], "method": "GET", "path": login_url(tenant.id), "status": 503}]


def test_the_plain_format_carries_the_request_id(settings):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello\nworld", (), None)
    RequestIdFilter().filter(record)
    line = OneLineFormatter(settings.LOGGING["formatters"]["plain"]["format"]).format(record)
    assert "[-] INFO x hello world" in line

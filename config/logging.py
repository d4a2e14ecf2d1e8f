"""Log formatting: one line per record. An exception is named (type, message and where it
was raised), never dumped as a traceback with local values, so logs cannot leak secrets.
A password reset link's token is cut out of every line, plain or JSON (``redact``): the
link's path holds it, and the access line and Django's 4xx/5xx lines log paths.

Every record carries the id of the request it was written in (``request_id``; ``-`` outside
a request): ``RequestIdMiddleware`` sets it, ``RequestIdFilter`` puts it on the record. With
``LOG_FORMAT=json``, ``JsonFormatter`` writes one JSON object per line with a fixed set of
keys: a value passed in ``extra`` by a library (Django passes the request object, whose text
holds the query string) is never written."""
import logging
import re
import traceback
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

NO_REQUEST = "-"
request_id: ContextVar[str] = ContextVar("gatehouse_request_id", default=NO_REQUEST)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id (a context variable, so each request
    of a threaded server has its own)."""

    def filter(self, record) -> bool:
        record.request_id = request_id.get()
        return True


def _exception_in_one_line(exc_info) -> str:
    exc_type, exc, tb = exc_info
    where = traceback.extract_tb(tb)[-1] if tb else None
    place = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    return f"[{exc_type.__name__}{place}]"

# /tenant/ID/password/reset/TOKEN/ → /tenant/ID/password/reset/[redacted]/
_RESET_TOKEN = re.compile(r"(/password/reset/)[^/\s?#\"']+")


def redact(text: str) -> str:
    """``text`` without the token of any password reset link in it."""
    return _RESET_TOKEN.sub(r"\1[redacted]", text) if "/password/reset/" in text else text


class OneLineFormatter(logging.Formatter):
    def format(self, record) -> str:
        # logging.Formatter puts the exception on a line of its own, and a message may carry a
        # line break of its own (a path, a username): one record stays one line.
        return redact(super().format(record).replace("\r", " ").replace("\n", " "))

    def formatException(self, exc_info) -> str:
        return _exception_in_one_line(exc_info)

    def formatStack(self, stack_info) -> str:
        return ""


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``request_id``,
    and for the access line ``method``, ``path``, ``status``, ``duration_ms``; an exception as
    ``exc_info`` in one line, like the plain format."""

    FIELDS = ("levelname", "name", "message", "request_id")
    EXTRAS = frozenset({"method", "path", "status", "duration_ms", "status_code", "exc_info"})

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", list(self.FIELDS))
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601 in UTC, e.g. 2026-12-04T22:47:58.403000+00:00
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict) -> dict:
        keep = {"time", "level", "logger", "message", "request_id"} | self.EXTRAS
        return {key: redact(value) if isinstance(value, str) else value for key, value in log_data.items() if key in keep}

    def formatException(self, exc_info) -> str:
        return _exception_in_one_line(exc_info)

    def formatStack(self, stack_info) -> str:
        return ""

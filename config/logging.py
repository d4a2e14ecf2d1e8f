"""Log formatting: one line per record. An exception is named (type, message and where it
was raised), never dumped as a traceback with local values, so logs cannot leak secrets.
A password reset link's token is cut out of every line (``redact``): the link's path holds
it, and Django logs the path of every 4xx and 5xx answer."""
import logging
import re
import traceback

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
        exc_type, exc, tb = exc_info
        where = traceback.extract_tb(tb)[-1] if tb else None
        place = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
        return f"[{exc_type.__name__}{place}]"

    def formatStack(self, stack_info) -> str:
        return ""

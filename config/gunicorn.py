"""gunicorn's access log without password reset tokens: the reset link's path holds one
(``/tenant/ID/password/reset/TOKEN/``), and the access log writes every path. Installed by
``gunicorn.conf.py`` (read by gunicorn from the directory it starts in) as ``logger_class``."""
from gunicorn.glogging import Logger

from config.logging import redact


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().atoms(resp, req, environ, request_time).items()}

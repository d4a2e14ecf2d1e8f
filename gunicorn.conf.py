"""gunicorn's configuration for Gatehouse, read by gunicorn from the directory it starts in
(``gunicorn config.wsgi:application`` run from the project's root; ``-c`` names it elsewhere).

- The settings are loaded before any worker starts: a missing setting (SECRET_KEY; EMAIL_URL
  when DEBUG is false) stops gunicorn with one line saying why (``config.startup``).
- Metrics of every worker add up: prometheus_client's multiprocess mode, each process writing
  its numbers under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` summing them. When the
  environment names no directory, a fresh temporary one is made for this run and removed at
  exit. Name one (empty at start, e.g. systemd's ``RuntimeDirectory=``) to share it with the
  notices' worker on the same host, whose mail failures are then counted too.
- The access log (when on) never holds a password reset token: ``logger_class``
  (``config.gunicorn.RedactingLogger``) cuts it out of the request line and the Referer.
"""
import os
import shutil
import tempfile

from django.conf import settings

from config.startup import settings_or_exit

settings_or_exit()

logger_class = "config.gunicorn.RedactingLogger"

_made_metrics_dir = ""
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_metrics_dir = tempfile.mkdtemp(prefix="gatehouse-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dir  # the workers inherit it

if settings.LOG_FORMAT == "json":
    # gunicorn's own lines (start, workers, errors) as JSON objects too. Its access log is off
    # (even with --access-logfile): Gatehouse writes one access line per request itself,
    # without the query string, which gunicorn's would show.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
        "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"],
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def child_exit(server, worker):
    """A worker ended: its live gauges stop counting (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)

"""Refusing to start, in one line: a missing or contradictory setting (``config/settings.py``
raises ``ImproperlyConfigured`` while it loads: no SECRET_KEY, no EMAIL_URL outside DEBUG, …)
stops ``manage.py`` and gunicorn (``gunicorn.conf.py``) with one line on stderr saying why and
exit status 1, instead of a traceback per process."""
import os
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def settings_or_exit(argv: list[str] | None = None) -> None:
    """Load the settings now; if they refuse, exit with their one-line reason. Then make sure
    the metrics' directory exists (``PROMETHEUS_MULTIPROC_DIR``, read by prometheus_client
    itself): every process writes its numbers there, ``manage.py`` commands and the notices'
    worker included, and would fail on a directory that is not there yet."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if argv is not None:  # manage.py: ``--settings`` wins over the environment, as in Django's own parsing
        for i, arg in enumerate(argv):
            if arg.startswith("--settings="):
                os.environ["DJANGO_SETTINGS_MODULE"] = arg.split("=", 1)[1]
            elif arg == "--settings" and i + 1 < len(argv):
                os.environ["DJANGO_SETTINGS_MODULE"] = argv[i + 1]
    try:
        settings.DEBUG  # the first read imports the settings module
    except ImproperlyConfigured as exc:
        sys.exit(f"Gatehouse is not starting: {exc}")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        try:
            os.makedirs(metrics_dir, exist_ok=True)
        except OSError as exc:
            sys.exit(f"Gatehouse is not starting: PROMETHEUS_MULTIPROC_DIR ({metrics_dir}) cannot be made ({exc.strerror}).")

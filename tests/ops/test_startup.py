"""Start-up refusals in one line (config.startup, gunicorn.conf.py), explicit console mail,
and `check --deploy` clean with the README's production settings. Real processes."""
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def production_env(**values: str) -> dict:
    """A production environment from scratch (nothing of the test run's settings leaks in)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50),
               EMAIL_URL="", DATABASE_URL="sqlite:///:memory:")
    env.update(values)
    return env


def run(args: list[str], env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def one_line_refusal(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("Gatehouse is not starting: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_manage_py_refuses_to_start_without_email_url_outside_debug():
    one_line_refusal(run([sys.executable, "manage.py", "check"], production_env()), "EMAIL_URL", "console://")


def test_gunicorn_refuses_to_start_without_email_url_outside_debug():
    result = run([str(GUNICORN), "config.wsgi:application", "-w", "2", "-b", "127.0.0.1:0"], production_env(), timeout=60)
    one_line_refusal(result, "EMAIL_URL")
    assert result.stdout == ""


def test_gunicorn_refuses_to_start_without_a_secret_key():
    result = run([str(GUNICORN), "config.wsgi:application", "-b", "127.0.0.1:0"], production_env(SECRET_KEY="", EMAIL_URL="console://"))
    one_line_refusal(result, "SECRET_KEY")


def test_a_wrong_log_format_is_refused_in_one_line():
    one_line_refusal(run([sys.executable, "manage.py", "check"], production_env(EMAIL_URL="console://", LOG_FORMAT="xml")), "LOG_FORMAT")


PRINT_BACKEND = "from django.conf import settings; print(settings.EMAIL_BACKEND)"


@pytest.mark.parametrize(
    ("values", "backend"),
    [
        ({"EMAIL_URL": "console://"}, "django.core.mail.backends.console.EmailBackend"),
        ({"EMAIL_URL": "consolemail://"}, "django.core.mail.backends.console.EmailBackend"),
        ({"EMAIL_URL": "smtp+tls://u:p@smtp.example.com:587"}, "django.core.mail.backends.smtp.EmailBackend"),
        ({"DEBUG": "true"}, "django.core.mail.backends.console.EmailBackend"),  # make run
    ],
)
def test_console_mail_only_by_choice_or_in_debug(values, backend):
    result = run([sys.executable, "manage.py", "shell", "-c", PRINT_BACKEND], production_env(**values))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == backend


def readme_production_env() -> dict:
    """The variables of the README's deployment example (``export DEBUG=false …``), as written,
    but for the placeholders of secrets (a random value each) and the database (not reached)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Deploying\n.*?```sh\n(.*?)```", text, re.S).group(1)
    export = re.search(r"^export (.*?)(?<!\\)$", block, re.S | re.M).group(1).replace("\\\n", " ")
    values = dict(word.split("=", 1) for word in shlex.split(export))
    assert values["DEBUG"] == "false" and values["EMAIL_URL"]
    for key, value in values.items():
        if "…" in value and key != "DATABASE_URL":
            values[key] = secrets.token_urlsafe(50)
    values["DATABASE_URL"] = "sqlite:///:memory:"
    return values


def test_check_deploy_is_clean_with_the_readmes_production_settings(tmp_path):
    values = readme_production_env()
    assert {"SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "METRICS_TOKEN", "LOG_FORMAT"} <= set(values)
    values["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(**values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


def test_the_metrics_directory_is_made_when_missing(tmp_path):
    """Every process writes its numbers under PROMETHEUS_MULTIPROC_DIR, a command too."""
    where = tmp_path / "not" / "yet"
    result = run([sys.executable, "manage.py", "check"], production_env(EMAIL_URL="console://", PROMETHEUS_MULTIPROC_DIR=str(where)))
    assert result.returncode == 0, result.stderr[-2000:]
    assert where.is_dir()


def test_manage_py_honours_the_settings_option():
    """``--settings`` names the module whose refusal counts (config.settings_test needs no EMAIL_URL)."""
    env = {k: v for k, v in production_env().items() if k not in ("SECRET_KEY", "EMAIL_URL")}
    for args in (["--settings=config.settings_test"], ["--settings", "config.settings_test"]):
        result = run([sys.executable, "manage.py", "check", *args], env)
        assert result.returncode == 0, result.stderr[-2000:]
    one_line_refusal(run([sys.executable, "manage.py", "check"], env), "SECRET_KEY")

"""Shared fixtures and factories. Time-dependent tests freeze time (time-machine) or pass it."""
import os
import shutil
import socket
import threading
from collections import Counter
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from django.core.cache import cache
from django.db import connection
from django_tasks_db.models import DBTaskResult

from accounts.errors import AuthFailure
from accounts.models import MfaMethod
from accounts.services import user_create
from mfa import crypto
from mfa.models import TOTPDevice
from tenants.services import tenant_create

PASSWORD = "correct-horse-battery-9"
# RFC 6238's SHA-1 test key ("12345678901234567890"), base32: a fixed secret with known codes.
FIXED_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def require_tool(name: str) -> str:
    """The path of an executable a test needs; skips without it, but fails under GATEHOUSE_CI=1."""
    path = shutil.which(name)
    if path is None:
        message = f"needs {name!r} on PATH"
        if os.environ.get("GATEHOUSE_CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    """In CI's SQLite leg, PostgreSQL-only tests are deselected rather than skipped: they run
    in the PostgreSQL leg, and CI fails on any skip. Elsewhere they skip with their reason."""
    if is_postgres() or os.environ.get("GATEHOUSE_CI") != "1":
        return
    selected, deselected = [], []
    for item in items:
        needs_pg = item.get_closest_marker("postgres") is not None or "postgres" in getattr(item, "fixturenames", ())
        (deselected if needs_pg else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def freeze_at(now):
    """A ``frozen`` fixture for a test module or package (``frozen = freeze_at(NOW)``): time
    stands still at ``now``, so a TOTP code is known in advance."""

    @pytest.fixture
    def frozen(time_machine):
        time_machine.move_to(now, tick=False)
        return time_machine

    return frozen


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def postgres(db):
    """Skips unless the suite runs on PostgreSQL (DATABASE_URL=postgres://…)."""
    if not is_postgres():
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://… (the CI's second leg does)")


@pytest.fixture
def tenant_factory(db):
    counter = iter(range(1, 10_000))

    def make(tenant_id: str | None = None, name: str | None = None, **policy):
        n = next(counter)
        return tenant_create(tenant_id=tenant_id or f"tenant-{n}", name=name or f"Tenant {n}", **policy)

    return make


@pytest.fixture
def tenant(tenant_factory):
    return tenant_factory("acme", "Acme Corp")


@pytest.fixture
def user_factory(db, tenant):
    counter = iter(range(1, 100_000))

    def make(username: str | None = None, *, tenant=tenant, password: str = PASSWORD, mfa_method=MfaMethod.NONE,
             email: str | None = None, is_admin: bool = False, is_superuser: bool = False):
        name = username or f"user{next(counter)}"
        return user_create(tenant=tenant, username=name, email=email or f"{name}@example.com", password=password,
                           mfa_method=mfa_method, is_admin=is_admin, is_superuser=is_superuser)

    return make


@pytest.fixture
def user(user_factory):
    return user_factory("alice")


def confirm_totp(user, secret: str = FIXED_SECRET, *, last_step: int = 0) -> TOTPDevice:
    """Give ``user`` a confirmed authenticator app with a known secret."""
    from django.utils import timezone

    device, _ = TOTPDevice.objects.update_or_create(
        user=user,
        defaults={"secret_encrypted": crypto.encrypt(secret), "confirmed_at": timezone.now(), "last_step": last_step},
    )
    return device


@pytest.fixture
def totp_user(user_factory):
    user = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    return user


@pytest.fixture
def email_user(user_factory):
    return user_factory("emma", mfa_method=MfaMethod.EMAIL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPSink:
    """What a real SMTP server on loopback received (aiosmtpd)."""

    def __init__(self):
        self.messages = []
        self._lock = threading.Lock()
        self.fail = False

    async def handle_DATA(self, server, session, envelope):
        if self.fail:
            return "451 Requested action aborted: local error in processing"
        msg = message_from_bytes(envelope.content, policy=default_policy)
        with self._lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    def bodies(self) -> list[str]:
        with self._lock:
            return [m.get_body(("plain",)).get_content() for m in self.messages]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on 127.0.0.1 (aiosmtpd), with Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    sink = SMTPSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    sink.controller = controller
    yield sink
    controller.stop()


def run_notices(*, limit: int = 100) -> int:
    """Run the queued tasks that are due (the security notices), the way ``manage.py
    db_worker`` runs each one: claim, call, record the outcome, through django-tasks-db's
    public model API. In-process, inside the test's transaction, which the command cannot
    be (its loop closes the connection). Answers how many ran; a task that raises is
    recorded as failed and its exception reaches the test."""
    ran = 0
    while (row := DBTaskResult.objects.ready().first()) is not None:
        assert ran < limit, "the queue never drained"
        row.claim("tests")
        result = row.task_result
        try:
            value = row.task.call(*result.args, **result.kwargs)
        except Exception as exc:
            row.set_failed(exc)
            raise
        row.set_successful(value)
        ran += 1
    return ran


def in_parallel(n: int, attempt) -> Counter:
    """Run ``attempt()`` in ``n`` threads released together; count the outcomes (error codes or "ok")."""
    barrier = threading.Barrier(n, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait()
            try:
                attempt()
                outcome = "ok"
            except AuthFailure as exc:
                outcome = exc.code
            except Exception as exc:  # noqa: BLE001 — reported, so the test fails with the reason
                outcome = f"crash: {exc!r}"
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return Counter(outcomes)

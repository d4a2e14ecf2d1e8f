"""Management commands: create_tenant, create_user, seed_demo, rotate_mfa_keys.

In-process with ``call_command`` for what they create; as real ``manage.py`` processes (on a
throwaway SQLite file) for the exit status and the shape of stderr.
"""
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from accounts.errors import InvalidCredentials
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import MfaMethod, User
from accounts.services import password_sign_in
from tenants.models import Tenant

GOOD_PASSWORD = "sturdy-password-42"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# --- create_tenant -------------------------------------------------------------------------------

def test_create_tenant_prints_the_id_last(db):
    assert last_line(run("create_tenant", "globex", "--name", "Globex")) == "globex"
    tenant = Tenant.objects.get(pk="globex")
    assert (tenant.name, tenant.mfa_max_attempts, tenant.lockout_seconds, tenant.mfa_required) == ("Globex", 5, 300, False)


def test_create_tenant_with_policy_options(db):
    run("create_tenant", "initech", "--name", "Initech", "--mfa-max-attempts", "3", "--password-max-attempts", "7",
        "--lockout-seconds", "900", "--mfa-required")
    tenant = Tenant.objects.get(pk="initech")
    assert (tenant.mfa_max_attempts, tenant.password_max_attempts, tenant.lockout_seconds, tenant.mfa_required) == (
        3, 7, 900, True
    )


def test_create_tenant_takes_every_policy_field(db):
    run("create_tenant", "hooli", "--name", "Hooli", "--email-code-ttl-seconds", "120", "--email-resend-seconds", "30",
        "--remember-device-days", "7", "--password-min-length", "12", "--password-reset-ttl-seconds", "600",
        "--allowed-methods", "totp,webauthn", "--issuer", "Hooli SSO", "--default-language", "de")
    tenant = Tenant.objects.get(pk="hooli")
    assert (tenant.email_code_ttl_seconds, tenant.email_resend_seconds, tenant.remember_device_days, tenant.password_min_length,
            tenant.password_reset_ttl_seconds, tenant.allowed_methods, tenant.issuer, tenant.default_language) == (
        120, 30, 7, 12, 600, ["totp", "webauthn"], "Hooli SSO", "de"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["ok-id", "--name", "X", "--allowed-methods", "totp,sms"],
        ["ok-id", "--name", "X", "--allowed-methods", ","],
        ["ok-id", "--name", "X", "--issuer", "Bad: colon"],
        ["ok-id", "--name", "X", "--default-language", "fr"],
        ["ok-id", "--name", "X", "--password-min-length", "7"],
        ["ok-id", "--name", "X", "--email-code-ttl-seconds", "601"],
        ["Bad_ID", "--name", "X"],
        ["-leading", "--name", "X"],
        ["a", "--name", "X"],  # too short
        ["x" * 64, "--name", "X"],  # too long
        ["ok-id", "--name", ""],
        ["ok-id", "--name", "N" * 201],
        ["ok-id"],  # --name missing
        ["ok-id", "--name", "X", "--mfa-max-attempts", "0"],
        ["ok-id", "--name", "X", "--mfa-max-attempts", "101"],
        ["ok-id", "--name", "X", "--mfa-max-attempts", "three"],
        ["ok-id", "--name", "X", "--password-max-attempts", "0"],
        ["ok-id", "--name", "X", "--lockout-seconds", "0"],
        ["ok-id", "--name", "X", "--lockout-seconds", "86401"],
        ["ok-id", "--name", "X", "--no-such-option"],
    ],
)
def test_create_tenant_bad_input_creates_nothing(db, args):
    with pytest.raises(CommandError) as exc:
        run("create_tenant", *args)
    assert "\n" not in str(exc.value)
    assert not Tenant.objects.exists()


def test_create_tenant_refuses_a_taken_id(db):
    run("create_tenant", "globex", "--name", "Globex")
    with pytest.raises(CommandError) as exc:
        run("create_tenant", "globex", "--name", "Another")
    assert str(exc.value).startswith("id:")
    assert Tenant.objects.get().name == "Globex"


# --- create_user ---------------------------------------------------------------------------------

@pytest.fixture
def globex(db):
    run("create_tenant", "globex", "--name", "Globex")
    return Tenant.objects.get(pk="globex")


def test_create_user_prints_the_uuid_last_and_the_user_can_sign_in(globex):
    uid = last_line(run("create_user", "globex", "Hank", "--email", "hank@globex.com", "--password", GOOD_PASSWORD,
                        "--mfa", "totp", "--admin"))
    user = User.objects.get(pk=uid)
    assert (user.username, user.email, user.mfa_method, user.is_tenant_admin, user.is_staff, user.is_superuser) == (
        "hank", "hank@globex.com", MfaMethod.TOTP, True, True, False
    )
    assert password_sign_in(tenant=globex, username="HANK", password=GOOD_PASSWORD) == user
    assert user.password.startswith("argon2")


def test_create_user_without_a_password_cannot_sign_in_until_a_reset(globex):
    uid = last_line(run("create_user", "globex", "newbie", "--email", "newbie@globex.com"))
    user = User.objects.get(pk=uid)
    assert not user.has_usable_password()
    with pytest.raises(InvalidCredentials):
        password_sign_in(tenant=globex, username="newbie", password="")


def test_create_user_superuser(globex):
    uid = last_line(run("create_user", "globex", "op", "--email", "op@globex.com", "--password", GOOD_PASSWORD, "--superuser"))
    user = User.objects.get(pk=uid)
    assert user.is_superuser and user.is_staff


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["nope", "bob", "--email", "b@x.org", "--password", GOOD_PASSWORD], None),  # no such tenant
        (["globex", "bob", "--email", "not-an-email", "--password", GOOD_PASSWORD], "email"),
        (["globex", "bob", "--email", "b@x.org", "--password", "short"], "password"),
        (["globex", "bob", "--email", "b@x.org", "--password", "password123"], "password"),  # common
        (["globex", "bob", "--email", "b@x.org", "--password", "12345678901"], "password"),  # too short
        (["globex", "bob", "--email", "b@x.org", "--password", "b.x.org-bob"], "password"),  # like the email
        (["globex", "bad name!", "--email", "b@x.org", "--password", GOOD_PASSWORD], "username"),
        (["globex", "", "--email", "b@x.org", "--password", GOOD_PASSWORD], "username"),
        (["globex", "u" * 151, "--email", "b@x.org", "--password", GOOD_PASSWORD], "username"),
        (["globex", "bob", "--email", "b@x.org", "--password", GOOD_PASSWORD, "--mfa", "sms"], None),
        (["globex", "bob", "--password", GOOD_PASSWORD], None),  # --email missing
    ],
)
def test_create_user_bad_input_creates_nothing(globex, args, field):
    with pytest.raises(CommandError) as exc:
        run("create_user", *args)
    message = str(exc.value)
    assert "\n" not in message
    if field:
        assert message.startswith(f"{field}:")
    assert not User.objects.exists()


def test_create_user_refuses_a_taken_username_whatever_its_case(globex):
    run("create_user", "globex", "bob", "--email", "b@x.org", "--password", GOOD_PASSWORD)
    with pytest.raises(CommandError) as exc:
        run("create_user", "globex", "BOB", "--email", "other@x.org", "--password", GOOD_PASSWORD)
    assert exc.value.args[0].startswith("username:")
    assert User.objects.get().email == "b@x.org"


def test_create_user_same_username_in_another_tenant(globex):
    run("create_tenant", "initech", "--name", "Initech")
    a = last_line(run("create_user", "globex", "bob", "--email", "b@x.org", "--password", GOOD_PASSWORD))
    b = last_line(run("create_user", "initech", "bob", "--email", "b@y.org", "--password", "another-pass-77"))
    assert a != b and User.objects.filter(username="bob").count() == 2


# --- seed_demo -----------------------------------------------------------------------------------

def test_seed_demo_creates_the_demo_and_prints_credentials(db):
    out = run("seed_demo")
    assert last_line(out) == "demo"
    assert set(User.objects.filter(tenant_id="demo").values_list("username", "mfa_method")) == {
        ("admin", MfaMethod.NONE), ("alice", MfaMethod.TOTP), ("bob", MfaMethod.EMAIL)
    }
    tenant = Tenant.objects.get(pk="demo")
    for username, password in (("admin", "demo-admin-pass-1"), ("alice", "demo-alice-pass-1"), ("bob", "demo-bob-pass-1")):
        assert f"{username}" in out and password in out
        assert password_sign_in(tenant=tenant, username=username, password=password).username == username
    assert "/tenant/demo/login/" in out
    assert User.objects.get(tenant=tenant, username="admin").is_tenant_admin


def test_seed_demo_is_idempotent(db):
    run("seed_demo")
    ids = set(User.objects.values_list("pk", flat=True))
    assert last_line(run("seed_demo")) == "demo"
    assert set(User.objects.values_list("pk", flat=True)) == ids
    assert Tenant.objects.count() == 1


def test_seed_demo_fills_in_a_missing_user_and_keeps_changes(db):
    run("seed_demo")
    User.objects.filter(username="bob").delete()
    Tenant.objects.filter(pk="demo").update(name="Renamed Demo")
    run("seed_demo")
    assert User.objects.filter(tenant_id="demo").count() == 3
    assert Tenant.objects.get(pk="demo").name == "Renamed Demo"


# --- real processes: exit status and stderr ----------------------------------------------------

@pytest.fixture(scope="module")
def cli_db(tmp_path_factory):
    """A migrated throwaway SQLite file, so manage.py runs as an operator would run it."""
    path = tmp_path_factory.mktemp("cli") / "cli.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CACHE_URL", "EMAIL_URL"}},
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"sqlite:///{path}",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "manage.py", "create_tenant", "cli-co", "--name", "CLI Co"], cwd=settings.BASE_DIR,
                   env=env, check=True, timeout=60, capture_output=True)
    env["_DB_PATH"] = str(path)
    return env


def counts(env) -> tuple[int, int]:
    """(tenants, users) in the throwaway database, read directly."""
    import sqlite3

    with sqlite3.connect(env["_DB_PATH"]) as db:
        return (db.execute("SELECT COUNT(*) FROM tenants_tenant").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM accounts_user").fetchone()[0])


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=Path(settings.BASE_DIR), env=env, capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["create_tenant", "Bad_ID", "--name", "X"],
        ["create_tenant", "ok-id"],
        ["create_tenant", "ok-id", "--name", "X", "--lockout-seconds", "0"],
        ["create_user", "nope", "bob", "--email", "b@x.org", "--password", GOOD_PASSWORD],
        ["create_user", "cli-co", "bob", "--email", "b@x.org", "--password", "short"],
        ["create_user", "cli-co", "bob", "--email", "b@x.org", "--password", GOOD_PASSWORD, "--mfa", "sms"],
    ],
)
def test_manage_py_bad_input_is_one_line_on_stderr_and_non_zero(cli_db, args):
    before = counts(cli_db)
    result = manage(cli_db, *args)
    assert_one_line_error(result)
    assert counts(cli_db) == before


def test_manage_py_success_prints_the_id_last_and_exits_zero(cli_db):
    result = manage(cli_db, "create_tenant", "cli-ok", "--name", "CLI OK")
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "cli-ok" and result.stderr == ""
    result = manage(cli_db, "create_user", "cli-ok", "zoe", "--email", "zoe@x.org", "--password", GOOD_PASSWORD)
    assert result.returncode == 0
    uid = result.stdout.strip().splitlines()[-1]
    import uuid

    assert str(uuid.UUID(uid)) == uid
    again = manage(cli_db, "create_user", "cli-ok", "zoe", "--email", "zoe@x.org", "--password", GOOD_PASSWORD)
    assert_one_line_error(again)
    assert again.returncode == 1 and again.stderr.startswith("CommandError: username:")

"""The password step (accounts.services.password_sign_in) and its lockout, by service and by page."""
from datetime import datetime, timedelta, timezone as dt_timezone
from http import HTTPStatus

import pytest
from django.core import mail
from django.http import Http404

from accounts.errors import InvalidCredentials, LockedOut
from accounts.models import AuditEvent, UnknownUsername
from accounts.selectors import tenant_and_user_by_username
from accounts.services import password_sign_in, user_update
from tests.accounts.flows import (
    account_url, form_error_codes, form_error_params, is_signed_in, login_url, password_step,
)
from tests.conftest import PASSWORD, freeze_at, run_notices

NOW = datetime(2030, 2, 2, 10, 0, 0, tzinfo=dt_timezone.utc)
Kind = AuditEvent.Kind


frozen = freeze_at(NOW)


@pytest.fixture
def strict(tenant_factory):
    return tenant_factory("strict", "Strict Inc", password_max_attempts=3, lockout_seconds=300)


def fail(tenant, username, n=1):
    for _ in range(n):
        with pytest.raises((InvalidCredentials, LockedOut)):
            password_sign_in(tenant=tenant, username=username, password="wrong-password-x")


# --- the service ------------------------------------------------------------------------------

def _failing(table: str, verb: str):
    """An execute wrapper (Django's public database instrumentation) that makes one kind of
    statement fail, as a database that goes away at that moment."""

    def wrapper(execute, sql, params, many, context):
        if table in sql and sql.lstrip().upper().startswith(verb):
            raise RuntimeError("the database went away")
        return execute(sql, params, many, context)

    return wrapper


def test_a_wrong_password_is_counted_with_its_audit_event_or_not_at_all(user):
    """Issue 15, item 12: the count and its event are one transaction."""
    from django.db import connection

    with connection.execute_wrapper(_failing("accounts_auditevent", "INSERT")), pytest.raises(RuntimeError):
        password_sign_in(tenant=user.tenant, username="alice", password="wrong-password-x")
    user.refresh_from_db()
    assert user.failed_password_count == 0 and not AuditEvent.objects.filter(user=user).exists()


def test_a_right_password_is_never_left_counted_as_a_failure(user):
    """Issue 15, item 12: nothing is counted before the hash is checked, so a database error
    while the right password is being accepted leaves no failure behind."""
    from django.db import connection

    user.__class__.objects.filter(pk=user.pk).update(failed_password_count=1)
    with connection.execute_wrapper(_failing("accounts_user", "UPDATE")), pytest.raises(RuntimeError):
        password_sign_in(tenant=user.tenant, username="alice", password=PASSWORD)
    user.refresh_from_db()
    assert user.failed_password_count == 1 and user.locked_until is None
    assert password_sign_in(tenant=user.tenant, username="alice", password=PASSWORD) == user
    user.refresh_from_db()
    assert user.failed_password_count == 0


def test_right_password_returns_the_user(user):
    assert password_sign_in(tenant=user.tenant, username="alice", password=PASSWORD) == user


@pytest.mark.parametrize("typed", ["ALICE", "Alice", "  alice  ", "aLiCe"])
def test_usernames_are_case_insensitive(user, typed):
    assert password_sign_in(tenant=user.tenant, username=typed, password=PASSWORD) == user


def test_wrong_password_and_unknown_user_get_the_same_error(user):
    with pytest.raises(InvalidCredentials) as wrong:
        password_sign_in(tenant=user.tenant, username="alice", password="nope-nope-nope")
    with pytest.raises(InvalidCredentials) as unknown:
        password_sign_in(tenant=user.tenant, username="nobody", password="nope-nope-nope")
    assert (wrong.value.code, wrong.value.message, wrong.value.extra) == (
        unknown.value.code, unknown.value.message, unknown.value.extra
    )
    assert wrong.value.status == HTTPStatus.UNAUTHORIZED


def test_an_unknown_user_costs_a_password_hash(user, monkeypatch):
    import accounts.services as services

    calls = []
    real = services.make_password
    monkeypatch.setattr(services, "make_password", lambda pw: calls.append(pw) or real(pw))
    fail(user.tenant, "ghost")
    assert calls == ["wrong-password-x"]


def test_inactive_user_is_refused_like_a_wrong_password(user):
    user_update(user=user, is_active=False)
    with pytest.raises(InvalidCredentials):
        password_sign_in(tenant=user.tenant, username="alice", password=PASSWORD)


def test_user_without_a_usable_password_is_refused(user_factory):
    nopw = user_factory("nopw", password=None)
    with pytest.raises(InvalidCredentials):
        password_sign_in(tenant=nopw.tenant, username="nopw", password="")


@pytest.mark.parametrize("password", [None, 123, ["x"]])
def test_non_string_password_is_just_wrong(user, password):
    with pytest.raises(InvalidCredentials):
        password_sign_in(tenant=user.tenant, username="alice", password=password)


def test_failures_are_audited(user):
    fail(user.tenant, "alice", 2)
    fail(user.tenant, "ghost")
    kinds = list(AuditEvent.objects.values_list("username", "kind", "user"))
    assert sorted(kinds, key=str) == sorted(
        [("alice", Kind.SIGN_IN_FAILURE, user.pk), ("alice", Kind.SIGN_IN_FAILURE, user.pk), ("ghost", Kind.SIGN_IN_FAILURE, None)],
        key=str,
    )


def test_the_limit_locks_and_then_the_right_password_is_refused(strict, user_factory, frozen):
    user = user_factory("bob", tenant=strict)
    mail.outbox.clear()
    fail(strict, "bob", 3)
    user.refresh_from_db()
    assert user.failed_password_count == 3 and user.locked_until == NOW + timedelta(seconds=300)
    with pytest.raises(LockedOut) as exc:
        password_sign_in(tenant=strict, username="bob", password=PASSWORD)
    assert exc.value.code == "locked_out" and exc.value.extra["retry_after"] == 300
    # The lock notice, with the tenant's name.
    run_notices()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["bob@example.com"] and "Strict Inc" in mail.outbox[0].subject
    assert AuditEvent.objects.filter(user=user, kind=Kind.LOCKOUT).count() == 1


def test_attempts_while_locked_are_not_counted(strict, user_factory, frozen):
    user = user_factory("bob", tenant=strict)
    fail(strict, "bob", 6)
    user.refresh_from_db()
    assert user.failed_password_count == 3
    assert AuditEvent.objects.filter(user=user, kind=Kind.SIGN_IN_FAILURE).count() == 3


def test_the_lock_lifts_after_the_period(strict, user_factory, frozen):
    user_factory("bob", tenant=strict)
    fail(strict, "bob", 3)
    frozen.shift(299)
    with pytest.raises(LockedOut) as exc:
        password_sign_in(tenant=strict, username="bob", password=PASSWORD)
    assert exc.value.extra["retry_after"] == 1
    frozen.shift(2)
    assert password_sign_in(tenant=strict, username="bob", password=PASSWORD).username == "bob"


def test_a_success_resets_the_counter(strict, user_factory, frozen):
    user = user_factory("bob", tenant=strict)
    fail(strict, "bob", 2)
    password_sign_in(tenant=strict, username="bob", password=PASSWORD)
    user.refresh_from_db()
    assert user.failed_password_count == 0
    fail(strict, "bob", 2)
    assert password_sign_in(tenant=strict, username="bob", password=PASSWORD) == user


def test_password_and_code_counters_are_separate(strict, user_factory, frozen):
    user = user_factory("bob", tenant=strict)
    user.__class__.objects.filter(pk=user.pk).update(failed_code_count=2)
    fail(strict, "bob", 1)
    user.refresh_from_db()
    assert (user.failed_password_count, user.failed_code_count) == (1, 2)


def test_the_right_password_clears_its_own_counter_and_lock_but_not_the_code_counter(strict, user_factory, frozen):
    user = user_factory("bob", tenant=strict)
    user.__class__.objects.filter(pk=user.pk).update(failed_code_count=2)
    fail(strict, "bob", 2)
    # The third attempt reaches the limit when it is counted, before the hash: being right, it is given back.
    assert password_sign_in(tenant=strict, username="bob", password=PASSWORD) == user
    user.refresh_from_db()
    assert (user.failed_password_count, user.failed_code_count, user.locked_until) == (0, 2, None)


def test_a_lock_set_by_a_parallel_failure_during_the_hash_stays(strict, user_factory, frozen, monkeypatch):
    """Between counting the attempt and the right password's give-back, a parallel wrong code
    reached its limit: that lock is not this attempt's to lift."""
    user = user_factory("bob", tenant=strict)
    model = user.__class__
    locked = NOW + timedelta(seconds=300)
    real = model.check_password

    def parallel_failure_meanwhile(self, raw):
        model.objects.filter(pk=self.pk).update(failed_code_count=3, locked_until=locked)
        return real(self, raw)

    monkeypatch.setattr(model, "check_password", parallel_failure_meanwhile)
    password_sign_in(tenant=strict, username="bob", password=PASSWORD)
    user.refresh_from_db()
    assert (user.failed_password_count, user.failed_code_count, user.locked_until) == (0, 3, locked)


def test_unknown_usernames_are_locked_the_same_way(strict, user_factory, frozen):
    user_factory("bob", tenant=strict)
    errors = {}
    for name in ("bob", "ghost"):
        for _ in range(3):
            with pytest.raises(InvalidCredentials):
                password_sign_in(tenant=strict, username=name, password="wrong-password-x")
        with pytest.raises(LockedOut) as exc:
            password_sign_in(tenant=strict, username=name, password="wrong-password-x")
        errors[name] = (exc.value.code, exc.value.message, exc.value.extra)
    assert errors["bob"] == errors["ghost"]
    ghost = UnknownUsername.objects.get(tenant=strict, username="ghost")
    assert ghost.failed_password_count == 3 and ghost.locked_until == NOW + timedelta(seconds=300)


def test_unknown_username_rows_are_per_tenant_and_case_insensitive(strict, tenant_factory, frozen):
    other = tenant_factory("other-co", "Other", password_max_attempts=3)
    fail(strict, "Ghost", 2)
    fail(strict, "GHOST", 1)
    fail(other, "ghost", 1)
    assert UnknownUsername.objects.get(tenant=strict, username="ghost").failed_password_count == 3
    assert UnknownUsername.objects.get(tenant=other, username="ghost").failed_password_count == 1


# --- two tenants, one username -------------------------------------------------------------------

@pytest.fixture
def twins(tenant_factory, user_factory):
    north = tenant_factory("north", "North", password_max_attempts=2)
    south = tenant_factory("south", "South", password_max_attempts=2)
    a = user_factory("sam", tenant=north, password="north-password-11")
    b = user_factory("sam", tenant=south, password="south-password-22")
    return a, b


def test_same_username_in_two_tenants_are_two_users(twins):
    a, b = twins
    assert a.pk != b.pk and a.username == b.username == "sam"


def test_each_tenant_checks_its_own_password(twins):
    a, b = twins
    assert password_sign_in(tenant=a.tenant, username="sam", password="north-password-11") == a
    assert password_sign_in(tenant=b.tenant, username="sam", password="south-password-22") == b
    with pytest.raises(InvalidCredentials):
        password_sign_in(tenant=a.tenant, username="sam", password="south-password-22")


def test_a_lockout_in_one_tenant_leaves_the_other_alone(twins, frozen):
    a, b = twins
    fail(a.tenant, "sam", 2)
    with pytest.raises(LockedOut):
        password_sign_in(tenant=a.tenant, username="sam", password="north-password-11")
    assert password_sign_in(tenant=b.tenant, username="sam", password="south-password-22") == b
    b.refresh_from_db()
    assert b.locked_until is None and b.failed_password_count == 0


def test_signing_in_to_one_tenant_is_not_a_sign_in_to_the_other(client, twins):
    a, b = twins
    password_step(client, "north", "sam", "north-password-11")
    assert is_signed_in(client, a)
    response = client.get(account_url("south"))
    assert response.status_code == HTTPStatus.FOUND and response.url.startswith(login_url("south"))
    password_step(client, "south", "sam", "south-password-22")
    assert is_signed_in(client, b) and not is_signed_in(client, a)


# --- the API's read: the tenant and the user in one statement ----------------------------------

def test_the_api_reads_the_tenant_and_its_user_in_one_statement(twins, django_assert_num_queries):
    a, b = twins
    with django_assert_num_queries(1):
        tenant, user = tenant_and_user_by_username(tenant_id="south", username="  SAM ")
        assert user.tenant is tenant  # no second statement for the user's tenant
    assert (tenant, user) == (b.tenant, b) and tenant.password_max_attempts == 2


def test_an_unknown_user_costs_the_same_one_statement(twins, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert tenant_and_user_by_username(tenant_id="north", username="nobody") == (twins[0].tenant, None)


def test_a_user_of_another_tenant_is_not_found(twins, tenant_factory):
    east = tenant_factory("east")
    assert tenant_and_user_by_username(tenant_id="east", username="sam") == (east, None)


def test_an_unknown_tenant_is_404(twins):
    with pytest.raises(Http404):
        tenant_and_user_by_username(tenant_id="west", username="sam")


def test_a_name_longer_than_the_column_finds_who_the_password_step_finds(tenant, user_factory):
    long = user_factory("a" * 150)
    assert tenant_and_user_by_username(tenant_id=tenant.pk, username="A" * 160)[1] == long
    assert password_sign_in(tenant=tenant, username="A" * 160, password=PASSWORD) == long


# --- the page ---------------------------------------------------------------------------------

def test_page_wrong_password_and_unknown_user_look_the_same(client, user):
    wrong = client.post(login_url(user.tenant_id), {"username": "alice", "password": "nope-nope-nope"})
    unknown = client.post(login_url(user.tenant_id), {"username": "zed", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == HTTPStatus.OK
    assert form_error_codes(wrong) == form_error_codes(unknown) == ["invalid_credentials"]
    as_text = lambda r: [str(e) for e in r.context["form"].non_field_errors()]  # noqa: E731
    assert as_text(wrong) == as_text(unknown)


def test_page_lockout_shows_the_time_left_then_lifts(client, strict, user_factory, frozen):
    user = user_factory("bob", tenant=strict)
    for _ in range(3):
        response = password_step(client, "strict", "bob", "wrong-password-x")
        assert form_error_codes(response) == ["invalid_credentials"]
    frozen.shift(60)
    response = password_step(client, "strict", "bob")
    assert form_error_codes(response) == ["locked_out"]
    assert form_error_params(response) == {"retry_after": 240}
    assert "4 min" in response.content.decode()
    assert not is_signed_in(client, user)
    frozen.shift(241)
    response = password_step(client, "strict", "bob")
    assert response.status_code == HTTPStatus.FOUND and is_signed_in(client, user)


def test_page_unknown_user_lockout_has_the_same_message(client, strict, user_factory, frozen):
    user_factory("bob", tenant=strict)
    pages = {}
    for name in ("bob", "nobody"):
        for _ in range(3):
            password_step(client, "strict", name, "wrong-password-x")
        pages[name] = password_step(client, "strict", name, "wrong-password-x")
    assert form_error_codes(pages["bob"]) == form_error_codes(pages["nobody"]) == ["locked_out"]
    messages = {n: [str(e) for e in p.context["form"].non_field_errors()] for n, p in pages.items()}
    assert messages["bob"] == messages["nobody"]


@pytest.mark.parametrize("data", [{}, {"username": "alice"}, {"password": PASSWORD}, {"username": "", "password": ""}])
def test_page_missing_fields_are_form_errors_not_counted(client, user, data):
    response = client.post(login_url(user.tenant_id), data)
    assert response.status_code == HTTPStatus.OK
    assert "required" in {e.code for errs in response.context["form"].errors.as_data().values() for e in errs}
    user.refresh_from_db()
    assert user.failed_password_count == 0


def test_page_overlong_username_is_a_form_error(client, user):
    response = client.post(login_url(user.tenant_id), {"username": "a" * 151, "password": PASSWORD})
    assert form_error_codes(response, "username") == ["max_length"]


def test_no_mfa_user_is_signed_in_directly(client, user):
    response = password_step(client, user.tenant_id, "alice")
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url(user.tenant_id)
    assert is_signed_in(client, user)
    user.refresh_from_db()
    assert user.last_login is not None
    assert AuditEvent.objects.filter(user=user, kind=Kind.SIGN_IN_SUCCESS).count() == 1
    assert client.session["gatehouse_amr"] == ["pwd"]


def test_mfa_user_is_not_signed_in_after_the_password(client, totp_user):
    response = password_step(client, totp_user.tenant_id, "tina")
    assert response.status_code == HTTPStatus.FOUND and response.url.endswith("/mfa/verify/")
    assert not is_signed_in(client, totp_user)
    assert not AuditEvent.objects.filter(kind=Kind.SIGN_IN_SUCCESS).exists()


def test_unknown_tenant_is_404(client, db):
    assert client.get(login_url("no-such-tenant")).status_code == HTTPStatus.NOT_FOUND
    assert client.post(login_url("no-such-tenant"), {"username": "a", "password": "b"}).status_code == HTTPStatus.NOT_FOUND


def test_login_form_needs_csrf(user):
    from django.test import Client

    strict_client = Client(enforce_csrf_checks=True)
    response = strict_client.post(login_url(user.tenant_id), {"username": "alice", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FORBIDDEN

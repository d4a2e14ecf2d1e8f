"""Password self-service at the service level: the rules, reset tokens, "Forgot password?"
through the notice queue, the reset and the change of a password."""
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts import lockout
from accounts.audit import RequestContext
from accounts.errors import InvalidCredentials, InvalidResetToken, LockedOut
from accounts.models import AuditEvent, RefreshTokenChain, User
from accounts.passwords import MAX_LENGTH, password_validate, reset_token_make, reset_token_valid
from accounts.selectors import reset_token_user
from accounts.services import password_change, password_reset, password_reset_send, password_sign_in, user_set_password
from accounts.tokens import AMR_PASSWORD, token_pair_issue
from flows.password import forgot
from mfa.setup import mfa_reset
from tenants.services import tenant_update_policy
from tests.conftest import PASSWORD, run_notices

NEW = "Quiet-Harbour-Lantern-42"
CTX = RequestContext(ip="203.0.113.7", user_agent="test", channel="web")


def rule_codes(exc: ValidationError, field: str = "password") -> set[str]:
    return {e.code for e in exc.error_dict[field]}


def reset_links() -> list[str]:
    return [m for msg in mail.outbox for m in re.findall(r"https?://\S+/password/reset/(\S+?)/", msg.body)]


def ask(tenant, login: str) -> None:
    forgot(request=RequestFactory().post("/"), tenant=tenant, login=login, ctx=CTX)


# --- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, codes",
    [
        ("short-1", {"password_too_short"}),
        ("x" * (MAX_LENGTH + 1), {"password_too_long"}),
        ("password1234", {"password_too_common"}),
        ("alice@example.com", {"password_too_similar"}),
        ("Alice-example", {"password_too_similar"}),
    ],
)
def test_each_rule_is_named(user, password, codes):
    with pytest.raises(ValidationError) as exc:
        password_validate(password, user)
    assert codes <= rule_codes(exc.value)


def test_the_longest_allowed_password_passes(user):
    password_validate("Zq8-" * (MAX_LENGTH // 4), user)


def test_the_minimum_length_is_the_tenants(user, tenant):
    password_validate("Zq8-vLp2-wX4r", user)  # 13
    tenant_update_policy(tenant=tenant, password_min_length=14)
    user.tenant.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        password_validate("Zq8-vLp2-wX4r", user)
    assert rule_codes(exc.value) == {"password_too_short"}


def test_every_setter_uses_the_rules(user, tenant):
    with pytest.raises(ValidationError) as exc:
        user_set_password(user=user, password="password1234")
    assert rule_codes(exc.value) == {"password_too_common"}
    with pytest.raises(ValidationError):
        password_change(user=user, current_password=PASSWORD, new_password="short")
    with pytest.raises(ValidationError) as exc:
        password_reset(tenant=tenant, token=reset_token_make(user), new_password="alice@example.com")
    assert rule_codes(exc.value, "new_password") == {"password_too_similar"}
    assert password_sign_in(tenant=tenant, username="alice", password=PASSWORD)


# --- tokens --------------------------------------------------------------------------------------


def test_a_token_is_valid_for_its_user_only(user, user_factory, tenant):
    token = reset_token_make(user)
    other = user_factory("bob")
    assert reset_token_user(tenant=tenant, token=token) == user
    assert not reset_token_valid(other, token)
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (forged, "", "x", "-", token.replace("-", "", 1), reset_token_make(other)[:33] + token[33:], None, 5, "a" * 500):
        assert reset_token_user(tenant=tenant, token=bad) in (None, other) and reset_token_user(tenant=tenant, token=bad) != user


def test_a_token_is_not_valid_in_another_tenant(user, tenant_factory, user_factory):
    other_tenant = tenant_factory("other")
    twin = user_factory("alice", tenant=other_tenant)
    token = reset_token_make(user)
    assert reset_token_user(tenant=other_tenant, token=token) is None
    assert not reset_token_valid(twin, f"{twin.pk.hex}-{token.split('-', 1)[1]}")
    with pytest.raises(InvalidResetToken):
        password_reset(tenant=other_tenant, token=token, new_password=NEW)


def test_a_token_lives_the_tenants_ttl(user, tenant, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    tenant_update_policy(tenant=tenant, password_reset_ttl_seconds=600)
    user.tenant.refresh_from_db()
    token = reset_token_make(user)
    time_machine.shift(599)
    assert reset_token_valid(user, token)
    time_machine.shift(2)
    assert not reset_token_valid(user, token)
    with pytest.raises(InvalidResetToken):
        password_reset(tenant=tenant, token=token, new_password=NEW)


@pytest.mark.parametrize("change", ["password", "mfa_reset", "deactivated"])
def test_a_token_dies_when_the_user_changes(user, change):
    token = reset_token_make(user)
    if change == "password":
        user_set_password(user=user, password="Another-Long-Pass-77")
    elif change == "mfa_reset":
        mfa_reset(user=user)
    else:
        User.objects.filter(pk=user.pk).update(is_active=False)
    user = User.objects.select_related("tenant").get(pk=user.pk)
    assert not reset_token_valid(user, token)


# --- the reset -----------------------------------------------------------------------------------


def test_reset_sets_the_password_once_and_ends_everything(user, tenant):
    chain = token_pair_issue(user=user, amr=AMR_PASSWORD) and RefreshTokenChain.objects.get(user=user)
    stamp = user.security_stamp
    token = reset_token_make(user)
    password_reset(tenant=tenant, token=token, new_password=NEW, ctx=CTX)
    user.refresh_from_db()
    assert user.check_password(NEW) and user.security_stamp != stamp
    chain.refresh_from_db()
    assert chain.revoked_at is not None
    assert user.last_login is None  # nobody was signed in
    assert user.email_verified_at is not None  # the link was read at the address
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.PASSWORD_RESET, ip="203.0.113.7").count() == 1
    with pytest.raises(InvalidResetToken):  # single use
        password_reset(tenant=tenant, token=token, new_password="Yet-Another-Pass-88")
    assert run_notices() == 1
    (notice,) = mail.outbox
    assert "reset link" in notice.body and "203.0.113.7" in notice.body
    assert notice.alternatives and "203.0.113.7" in notice.alternatives[0][0]


def test_a_bad_token_is_reported_before_a_bad_password(user, tenant):
    with pytest.raises(InvalidResetToken):
        password_reset(tenant=tenant, token="nope", new_password="short")


def test_a_refused_password_writes_nothing(user, tenant):
    before = User.objects.filter(pk=user.pk).values().get()
    token = reset_token_make(user)
    with pytest.raises(ValidationError):
        password_reset(tenant=tenant, token=token, new_password="short")
    assert User.objects.filter(pk=user.pk).values().get() == before
    assert reset_token_valid(user, token)  # still usable
    assert not DBTaskResult.objects.exists() and not AuditEvent.objects.exists()


def test_reset_lifts_a_password_lockout(user, tenant):
    for _ in range(tenant.password_max_attempts):
        with pytest.raises((InvalidCredentials, LockedOut)):
            password_sign_in(tenant=tenant, username="alice", password="wrong-wrong-1")
    user.refresh_from_db()
    assert lockout.is_locked(user)
    password_reset(tenant=tenant, token=reset_token_make(user), new_password=NEW)
    user.refresh_from_db()
    assert not lockout.is_locked(user) and user.failed_password_count == 0
    assert password_sign_in(tenant=tenant, username="alice", password=NEW)


def test_reset_does_not_lift_an_mfa_lockout(user, tenant):
    for _ in range(tenant.mfa_max_attempts):
        lockout.register_failure(model=User, pk=user.pk, counter="code", limit=tenant.mfa_max_attempts,
                                 lockout_seconds=tenant.lockout_seconds)
    user.refresh_from_db()
    assert lockout.is_locked(user)
    password_reset(tenant=tenant, token=reset_token_make(user), new_password=NEW)
    user.refresh_from_db()
    assert lockout.is_locked(user) and user.failed_code_count == tenant.mfa_max_attempts
    with pytest.raises(LockedOut):
        password_sign_in(tenant=tenant, username="alice", password=NEW)


# --- "Forgot password?" --------------------------------------------------------------------------


def test_forgot_queues_one_task_whether_or_not_an_account_matches(user, tenant):
    ask(tenant, "alice")
    ask(tenant, "nobody-at-all")
    assert DBTaskResult.objects.count() == 2
    assert {r.task_path for r in DBTaskResult.objects.all()} == {"flows.password.forgot_lookup"}
    assert not mail.outbox  # nothing is sent in the request


@pytest.mark.parametrize("login", ["alice", "ALICE", "alice@example.com", "Alice@Example.com"])
def test_forgot_mails_a_working_link_to_a_match(user, tenant, login):
    ask(tenant, login)
    run_notices()
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert "203.0.113.7" in message.body and "did not ask" in message.body
    assert message.alternatives[0][1] == "text/html"
    (token,) = reset_links()
    assert reset_token_user(tenant=tenant, token=token) == user
    password_reset(tenant=tenant, token=token, new_password=NEW)
    assert password_sign_in(tenant=tenant, username="alice", password=NEW)


def test_forgot_mails_nothing_for_no_match_an_inactive_user_or_another_tenant(user, user_factory, tenant, tenant_factory):
    other = tenant_factory("other")
    user_factory("ivan", email="ivan@example.com")
    User.objects.filter(username="ivan").update(is_active=False)
    for login in ("nobody", "ivan", "ivan@example.com", "", "   "):
        ask(tenant, login)
    ask(other, "alice")
    run_notices()
    assert not mail.outbox


def test_no_token_is_stored_in_the_queue(user, tenant):
    ask(tenant, "alice")
    run_notices()
    (token,) = reset_links()
    for row in DBTaskResult.objects.all():
        assert token not in str(row.args_kwargs) and token not in str(row.return_value)
        assert token.split("-", 1)[1] not in str(row.args_kwargs)


def test_forgot_mails_an_account_at_most_once_per_resend_gap(user, tenant, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    ask(tenant, "alice")
    ask(tenant, "alice@example.com")
    run_notices()
    assert len(mail.outbox) == 1
    time_machine.shift(tenant.email_resend_seconds + 1)
    ask(tenant, "alice")
    run_notices()
    assert len(mail.outbox) == 2


def test_a_link_requested_before_a_password_change_is_not_mailed_after_it(user, tenant):
    assert password_reset_send(user=user, link_base="http://testserver/", ctx=CTX)  # what the look-up queues
    user_set_password(user=user, password="Another-Long-Pass-77")
    run_notices()
    assert not reset_links()
    assert [m.subject for m in mail.outbox] == ["Acme Corp: the password of your account was changed"]


def test_a_mailed_link_dies_when_the_password_changes(user, tenant):
    ask(tenant, "alice")
    run_notices()
    (token,) = reset_links()
    password_change(user=User.objects.select_related("tenant").get(pk=user.pk), current_password=PASSWORD,
                    new_password="Another-Long-Pass-77")
    with pytest.raises(InvalidResetToken):
        password_reset(tenant=tenant, token=token, new_password=NEW)


def test_an_admin_send_is_refused_for_an_inactive_user(user, user_factory):
    admin = user_factory("boss", is_admin=True)
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        password_reset_send(user=user, link_base="http://testserver/", actor=admin)
    assert rule_codes(exc.value, "send_password_reset") == {"cannot_send"}
    assert not DBTaskResult.objects.exists()


# --- the change ----------------------------------------------------------------------------------


def test_change_needs_the_current_password_and_counts_a_wrong_one(user, tenant):
    tenant_update_policy(tenant=tenant, password_max_attempts=2)
    user = User.objects.select_related("tenant").get(pk=user.pk)
    with pytest.raises(InvalidCredentials):
        password_change(user=user, current_password="wrong-wrong-1", new_password=NEW)
    assert User.objects.get(pk=user.pk).failed_password_count == 1
    with pytest.raises(InvalidCredentials):
        password_change(user=user, current_password="wrong-wrong-1", new_password=NEW)
    with pytest.raises(LockedOut):  # locked now, even with the right one
        password_change(user=user, current_password=PASSWORD, new_password=NEW)
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_change_keeps_the_callers_chain_and_ends_the_others(user):
    token_pair_issue(user=user, amr=AMR_PASSWORD)
    token_pair_issue(user=user, amr=AMR_PASSWORD)
    mine, theirs = RefreshTokenChain.objects.filter(user=user)
    password_change(user=user, current_password=PASSWORD, new_password=NEW, ctx=CTX, keep_chain=str(mine.pk))
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is None and theirs.revoked_at is not None
    assert User.objects.get(pk=user.pk).check_password(NEW)
    run_notices()
    (notice,) = mail.outbox
    assert "changed" in notice.subject and "203.0.113.7" in notice.body


def test_a_refused_new_password_is_not_counted(user):
    with pytest.raises(ValidationError):
        password_change(user=user, current_password="wrong-wrong-1", new_password="short")
    assert User.objects.get(pk=user.pk).failed_password_count == 0


def test_a_user_without_a_password_gets_in_through_a_reset_link(tenant, user_factory):
    from accounts.services import user_create

    newbie = user_create(tenant=tenant, username="newbie", email="newbie@example.com")
    assert not newbie.has_usable_password()
    password_reset_send(user=newbie, link_base="http://testserver/", actor=user_factory("boss", is_admin=True))
    run_notices()
    (token,) = reset_links()
    assert "administrator" in mail.outbox[0].body
    password_reset(tenant=tenant, token=token, new_password=NEW)
    assert password_sign_in(tenant=tenant, username="newbie", password=NEW)


def test_the_reset_gap_is_per_account_and_admin_sends_ignore_it(user, user_factory):
    admin = user_factory("boss", is_admin=True)
    assert password_reset_send(user=user, link_base="http://t/", gap=60)
    assert not password_reset_send(user=user, link_base="http://t/", gap=60)
    assert password_reset_send(user=user, link_base="http://t/", actor=admin)
    User.objects.filter(pk=user.pk).update(password_reset_sent_at=timezone.now() - timedelta(seconds=61))
    assert password_reset_send(user=user, link_base="http://t/", gap=60)


def test_a_forgot_lookup_whose_worker_died_is_run_again_by_the_sweeper(user, tenant, time_machine):
    from accounts.management.commands.db_worker import SWEPT_TASKS
    from accounts.notifications import notices_requeue_stale, stale_claim_seconds

    time_machine.move_to(timezone.now(), tick=False)
    ask(tenant, "alice")
    DBTaskResult.objects.get(task_path="flows.password.forgot_lookup").claim("killed-worker")
    assert run_notices() == 0 and not mail.outbox
    time_machine.shift(timedelta(seconds=stale_claim_seconds() + 1))
    assert notices_requeue_stale() == 0  # the notices' own sweep leaves it
    assert notices_requeue_stale(tasks=SWEPT_TASKS) == 1  # the worker's sweep takes it
    run_notices()
    assert len(reset_links()) == 1

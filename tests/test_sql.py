"""config/sql.py: the hot path's statements read and write exactly what the ORM would."""
import pytest
from django.db import IntegrityError
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.audit import RequestContext, audit_event
from accounts.models import AuditEvent, User
from config import sql
from mfa.models import TOTPDevice
from tests.conftest import confirm_totp


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_get_builds_the_instance_the_orm_builds(totp_user):
    User.objects.filter(pk=totp_user.pk).update(last_login=timezone.now(), locked_until=timezone.now(), failed_code_count=2)
    by_orm = User.objects.get(pk=totp_user.pk)
    by_sql = sql.get(User, pk=totp_user.pk, tenant=totp_user.tenant_id)
    assert _fields(by_sql) == _fields(by_orm)  # UUID, aware datetimes, booleans alike on every backend
    assert by_sql._state.adding is False
    device = TOTPDevice.objects.get(user=totp_user)
    assert _fields(sql.get(TOTPDevice, user=totp_user.pk)) == _fields(device)


def test_get_is_none_without_a_match(user, tenant_factory):
    other = tenant_factory(tenant_id="other")
    assert sql.get(User, pk=user.pk, tenant=other.pk) is None


def test_insert_writes_what_the_orm_reads_back_and_sets_the_auto_key(user):
    event = sql.insert(audit_event(kind=AuditEvent.Kind.LOGIN_SUCCESS, tenant_id=user.tenant_id, user=user,
                                   ctx=RequestContext(ip="192.0.2.7", user_agent="ua", channel="api")))
    assert event.pk is not None and event.created_at is not None  # auto_now_add applied
    assert _fields(AuditEvent.objects.get(pk=event.pk)) == _fields(event)


def test_an_update_writes_only_the_named_fields(user):
    when = timezone.now()
    sql.write_together(sql.update_statement(User, user.pk, last_login=when))
    user.refresh_from_db()
    assert user.last_login == when and user.failed_password_count == 0


@pytest.mark.django_db(transaction=True)
def test_writes_together_are_all_or_nothing(user_factory):
    user = user_factory(username="wt")
    taken = OutstandingToken.objects.create(user=user, jti="taken", token="", expires_at=timezone.now())
    statements = (
        sql.update_statement(User, user.pk, last_login=timezone.now()),
        sql.insert_statement(audit_event(kind=AuditEvent.Kind.LOGIN_SUCCESS, tenant_id=user.tenant_id, user=user)),
        sql.insert_statement(OutstandingToken(user=user, jti=taken.jti, token="", expires_at=timezone.now())),
    )
    with pytest.raises(IntegrityError):
        sql.write_together(*statements)
    user.refresh_from_db()
    assert user.last_login is None
    assert not AuditEvent.objects.filter(user=user).exists()
    sql.write_together(*statements[:2])
    user.refresh_from_db()
    assert user.last_login is not None and AuditEvent.objects.filter(user=user).count() == 1


def test_a_device_without_confirmation_reads_back_as_such(user):
    confirm_totp(user)
    TOTPDevice.objects.filter(user=user).update(confirmed_at=None)
    assert sql.get(TOTPDevice, user=user.pk).confirmed_at is None


def test_write_if_writes_everything_when_its_guard_matches_and_nothing_when_it_misses(totp_user):
    user = totp_user
    device = TOTPDevice.objects.get(user=user)
    guard = ('UPDATE "mfa_totpdevice" SET "last_step" = %s WHERE "id" = %s AND "last_step" < %s', [7, device.pk, 7])
    when = timezone.now()
    writes = (
        sql.update_statement(User, user.pk, last_login=when),
        sql.insert_statement(audit_event(kind=AuditEvent.Kind.LOGIN_SUCCESS, tenant_id=user.tenant_id, user=user,
                                         ctx=RequestContext(ip="192.0.2.7", user_agent="ua", channel="api"))),
    )
    assert sql.write_if(guard, *writes) is True
    user.refresh_from_db()
    assert TOTPDevice.objects.get(pk=device.pk).last_step == 7 and user.last_login == when
    assert AuditEvent.objects.filter(user=user).count() == 1
    User.objects.filter(pk=user.pk).update(last_login=None)
    assert sql.write_if(guard, *writes) is False
    user.refresh_from_db()
    assert user.last_login is None
    assert AuditEvent.objects.filter(user=user).count() == 1

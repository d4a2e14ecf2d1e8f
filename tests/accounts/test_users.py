"""Users: creation rules, usernames per tenant and case-insensitive, passwords hashed with Argon2id."""
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import MfaMethod, User
from accounts.selectors import user_get, user_get_by_username, user_get_or_none
from accounts.services import user_create, user_delete, user_set_password, user_update
from tests.conftest import PASSWORD


def test_user_ids_are_random_uuids(user_factory):
    a, b = user_factory("a1"), user_factory("b1")
    assert isinstance(a.pk, uuid.UUID) and a.pk.version == 4 and a.pk != b.pk


def test_passwords_are_hashed_with_argon2id(user):
    assert user.password.startswith("argon2$argon2id$")
    assert PASSWORD not in user.password


def test_usernames_are_stored_lower_case(user_factory):
    assert user_factory("MiXeD").username == "mixed"


def test_the_same_username_differently_cased_is_taken(user_factory, tenant):
    user_factory("carol")
    with pytest.raises(ValidationError) as exc:
        user_create(tenant=tenant, username="CAROL", email="c2@example.com", password=PASSWORD)
    assert [e.code for e in exc.value.error_dict["username"]] == ["username_taken"]
    assert User.objects.filter(tenant=tenant).count() == 1


def test_the_same_username_in_two_tenants(tenant_factory, user_factory):
    t1, t2 = tenant_factory(), tenant_factory()
    a = user_factory("dave", tenant=t1)
    b = user_factory("DAVE", tenant=t2)
    assert a.pk != b.pk
    assert user_get_by_username(tenant=t1, username="Dave") == a
    assert user_get_by_username(tenant=t2, username="dave") == b


def test_the_database_enforces_one_username_per_tenant(user, tenant):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(tenant=tenant, username="alice", email="x@example.com")


def test_selectors_are_scoped_by_tenant(user, tenant_factory):
    other = tenant_factory()
    assert user_get_or_none(tenant=user.tenant, user_id=user.pk) == user
    assert user_get_or_none(tenant=other, user_id=user.pk) is None
    assert user_get_or_none(tenant=user.tenant, user_id="not-a-uuid") is None
    from django.http import Http404

    with pytest.raises(Http404):
        user_get(tenant=other, user_id=user.pk, viewer=user)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"username": "", "email": "e@example.com"}, "username"),
        ({"username": "has space", "email": "e@example.com"}, "username"),
        ({"username": "x" * 151, "email": "e@example.com"}, "username"),
        ({"username": "erin", "email": "nope"}, "email"),
        ({"username": "erin", "email": ""}, "email"),
        ({"username": "erin", "email": "e@example.com", "mfa_method": "sms"}, "mfa_method"),
        ({"username": "erin", "email": "e@example.com", "password": "123"}, "password"),
        ({"username": "erin", "email": "erin@example.com", "password": "erin@example.com"}, "password"),
    ],
)
def test_user_create_refuses_bad_values_and_writes_nothing(tenant, kwargs, field):
    kwargs.setdefault("password", PASSWORD)
    with pytest.raises(ValidationError) as exc:
        user_create(tenant=tenant, **kwargs)
    assert field in exc.value.message_dict
    assert not User.objects.exists()


def test_user_create_without_password_gives_an_unusable_one(tenant):
    user = user_create(tenant=tenant, username="nopass", email="n@example.com")
    assert not user.has_usable_password()


def test_user_update_validates_and_normalizes(user):
    user_update(user=user, username="ALICIA", email="alicia@example.com", mfa_method=MfaMethod.EMAIL, is_admin=True)
    user.refresh_from_db()
    assert (user.username, user.email, user.mfa_method, user.is_tenant_admin, user.is_staff) == (
        "alicia", "alicia@example.com", MfaMethod.EMAIL, True, True
    )
    with pytest.raises(ValidationError):
        user_update(user=user, mfa_method="sms")
    with pytest.raises(ValidationError):
        user_update(user=user, password="sneaky")


def test_user_set_password_validates_and_audits(user):
    from accounts.models import AuditEvent

    with pytest.raises(ValidationError):
        user_set_password(user=user, password="short")
    user_set_password(user=user, password="a-new-long-password-5")
    user.refresh_from_db()
    assert user.check_password("a-new-long-password-5")
    assert AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.PASSWORD_CHANGED).count() == 1


def test_user_delete(user):
    user_delete(user=user)
    assert not User.objects.exists()


def test_a_verified_address_stays_verified_until_it_changes(user):
    from accounts.services import email_verified_mark

    email_verified_mark(user=user)
    verified_at = User.objects.get(pk=user.pk).email_verified_at
    assert verified_at is not None
    user_update(user=user, email=user.email, username=user.username)  # a PUT naming the same address
    assert User.objects.get(pk=user.pk).email_verified_at == verified_at
    user_update(user=user, email="moved@example.com")
    assert User.objects.get(pk=user.pk).email_verified_at is None


def test_mail_read_at_an_address_since_replaced_verifies_nothing(user):
    from accounts.services import email_verified_mark

    read_at_old_address = User.objects.get(pk=user.pk)
    user_update(user=user, email="moved@example.com")
    email_verified_mark(user=read_at_old_address)
    assert User.objects.get(pk=user.pk).email_verified_at is None

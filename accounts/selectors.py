"""Reads of users, always scoped by tenant (Zulip's ``access_user_by_id``)."""
import uuid
from functools import cache

from django.db import connections, router
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from config import sql
from tenants.models import Tenant


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up lower-cased, NFKC-normalized."""
    return User.normalize_username(username or "").strip().lower()


def user_list(*, tenant) -> QuerySet[User]:
    return User.objects.filter(tenant=tenant)


def _of(tenant, user: User | None) -> User | None:
    if user is not None:
        user.tenant = tenant  # the row's tenant is this one: no second query for it
    return user


def _uuid(user_id) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(user_id))
    except (TypeError, ValueError, AttributeError):
        return None


def user_get_or_none(*, tenant, user_id) -> User | None:
    """On every pending sign-in and API call: one statement (``config.sql``)."""
    uid = _uuid(user_id)
    return _of(tenant, sql.get(User, pk=uid, tenant=tenant.pk)) if uid is not None else None


@cache
def _with_tenant_sql() -> str:
    return (
        f'SELECT {sql.columns(User, "u")}, {sql.columns(Tenant, "t")} FROM "{User._meta.db_table}" u '
        f'JOIN "{Tenant._meta.db_table}" t ON t."id" = u."tenant_id" WHERE u."id" = %s AND u."tenant_id" = %s'
    )


def user_get_with_tenant(*, tenant_id: str, user_id) -> User | None:
    """``user_get_or_none`` before the tenant is read: the user of ``tenant_id`` with its
    tenant, in one statement; None when either is missing."""
    uid = _uuid(user_id)
    if uid is None:
        return None
    conn = connections[router.db_for_read(User)]
    with sql.prepared_cursor(conn) as cursor:
        cursor.execute(_with_tenant_sql(), [sql.prep(User, "pk", uid, conn), str(tenant_id)])
        row = cursor.fetchone()
    if row is None:
        return None
    user, user.tenant = sql.load_joined(row, User, Tenant, conn=conn)
    return user


def user_get(*, tenant, user_id) -> User:
    user = user_get_or_none(tenant=tenant, user_id=user_id)
    if user is None:
        raise Http404("No such user.")
    return user


def user_get_by_username(*, tenant, username: str) -> User | None:
    """The password step's look-up (already normalized names are unchanged by normalizing)."""
    name = normalize_username(username)
    return _of(tenant, sql.get(User, tenant=tenant.pk, username=name)) if name else None

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


def login_name(username: str) -> str:
    """The name a sign-in looks up and counts against: normalized, cut to the column's 150 characters."""
    return normalize_username(username)[:150]


def user_list(*, tenant) -> QuerySet[User]:
    return User.objects.filter(tenant=tenant)


def _of(tenant, user: User | None) -> User | None:
    if user is not None:
        user.tenant = tenant  # the row's tenant is this one: no second query for it
    return user


def as_uuid(user_id) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(user_id))
    except (TypeError, ValueError, AttributeError):
        return None


def user_get_or_none(*, tenant, user_id) -> User | None:
    """On every pending sign-in and API call: one statement (``config.sql``)."""
    uid = as_uuid(user_id)
    return _of(tenant, sql.get(User, pk=uid, tenant=tenant.pk)) if uid is not None else None


def user_get(*, tenant, user_id) -> User:
    user = user_get_or_none(tenant=tenant, user_id=user_id)
    if user is None:
        raise Http404("No such user.")
    return user


def user_get_by_username(*, tenant, username: str) -> User | None:
    """The password step's look-up (already normalized names are unchanged by normalizing)."""
    name = normalize_username(username)
    return _of(tenant, sql.get(User, tenant=tenant.pk, username=name)) if name else None


@cache
def _tenant_and_user_sql() -> str:
    return (
        f'SELECT {sql.columns(Tenant, "t")}, {sql.columns(User, "u")} FROM "{Tenant._meta.db_table}" t '
        f'LEFT JOIN "{User._meta.db_table}" u ON u."tenant_id" = t."id" AND u."username" = %s WHERE t."id" = %s'
    )


def tenant_and_user_by_username(*, tenant_id: str, username: str) -> tuple[Tenant, User | None]:
    """The API password step's read: the tenant named in the URL (404 when there is none) and
    its user ``username`` (None when there is none), in one statement where ``tenant_get``
    and ``user_get_by_username`` take two. Both answers cost that one statement, so its
    time does not tell whether the user exists."""
    name = login_name(username)
    conn = connections[router.db_for_read(User)]
    with sql.prepared_cursor(conn) as cursor:
        cursor.execute(_tenant_and_user_sql(), [sql.prep(User, "username", name, conn), sql.prep(Tenant, "pk", tenant_id, conn)])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such tenant.")
    tenant, user = sql.load_joined(row, Tenant, User, conn=conn)
    return tenant, _of(tenant, user) if name else None

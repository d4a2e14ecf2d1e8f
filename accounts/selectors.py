"""Reads of users, always scoped by tenant (Zulip's ``access_user_by_id``)."""
import uuid

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from config import sql


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up lower-cased, NFKC-normalized."""
    return User.normalize_username(username or "").strip().lower()


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

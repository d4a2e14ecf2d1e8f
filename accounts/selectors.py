"""Reads of users, always scoped by tenant (Zulip's ``access_user_by_id``)."""
import uuid

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up lower-cased, NFKC-normalized."""
    return User.normalize_username(username or "").strip().lower()


def user_list(*, tenant) -> QuerySet[User]:
    return User.objects.filter(tenant=tenant)


def user_get_or_none(*, tenant, user_id) -> User | None:
    try:
        uid = uuid.UUID(str(user_id))
    except (TypeError, ValueError, AttributeError):
        return None
    return User.objects.select_related("tenant").filter(tenant=tenant, pk=uid).first()


def user_get(*, tenant, user_id) -> User:
    user = user_get_or_none(tenant=tenant, user_id=user_id)
    if user is None:
        raise Http404("No such user.")
    return user


def user_get_by_username(*, tenant, username: str) -> User | None:
    return User.objects.select_related("tenant").filter(tenant=tenant, username=normalize_username(username)).first()

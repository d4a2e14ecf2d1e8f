"""Reads of users, always scoped by tenant (Zulip's ``access_user_by_id``).

Who may see whom: a platform operator (an active superuser) sees everyone; to anyone else an
operator does not exist, even in the operator's own tenant: not listed, its id a 404, in the
Users API and the admin alike. That rule is ``sees_operators`` (who sees them) and
``_operator`` (who they are); ``users_seen_by`` applies it to users and everything that shows
users to an admin goes through it (``user_list``, ``user_get``, the admin's querysets and choices).
An audit event that names an operator, as the person it happened to or as the actor, is
hidden from a non-operator as a whole (``audit_events_seen_by``): blanking only the name
would still show that someone invisible acted, and operators keep the whole trail.
The sign-in reads (``user_get_or_none``, ``user_get_by_username``,
``tenant_and_user_by_username``) are not shown to anyone and must find operators too.
"""
import uuid

from django.db.models import FilteredRelation, Q, QuerySet
from django.http import Http404

from accounts.models import AuditEvent, User
from accounts.passwords import reset_token_user_id, reset_token_valid
from tenants.models import Tenant


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up lower-cased, NFKC-normalized."""
    return User.normalize_username(username or "").strip().lower()


def sign_in_name(username: str) -> str:
    """The name a sign-in looks up and counts against: normalized, cut to the column's 150 characters."""
    return normalize_username(username)[:150]


def sees_operators(*, viewer: User) -> bool:
    """Only an active operator sees operators (a deactivated one keeps ``is_superuser`` but
    no longer acts as one); the admin also lets exactly these people see every tenant."""
    return bool(viewer.is_active and viewer.is_superuser)


def _operator(via: str = "") -> Q:
    """Who an operator is, for a queryset of users (``via=""``) or through a foreign key."""
    return Q(**{f"{via}is_superuser": True})


def users_seen_by(*, viewer: User, users: QuerySet[User]) -> QuerySet[User]:
    """``users`` minus the operators, unless ``viewer`` sees operators: the one rule."""
    return users if sees_operators(viewer=viewer) else users.exclude(_operator())


def audit_events_seen_by(*, viewer: User, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    """``events`` minus those whose user or actor is an operator, unless ``viewer`` sees operators."""
    if sees_operators(viewer=viewer):
        return events
    return events.exclude(_operator("user__")).exclude(_operator("actor__"))


def log_entries_seen_by(*, viewer: User, entries: QuerySet) -> QuerySet:
    """Django admin log entries (``LogEntry``) minus those an operator made, unless ``viewer``
    sees operators: an object's history page names who changed it."""
    return entries if sees_operators(viewer=viewer) else entries.exclude(_operator("user__"))


def user_list(*, tenant, viewer: User) -> QuerySet[User]:
    """The tenant's users that ``viewer`` may see (the Users API's list, the admin's choices)."""
    return users_seen_by(viewer=viewer, users=User.objects.filter(tenant=tenant))


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
    """On every pending sign-in and API call: one statement."""
    uid = as_uuid(user_id)
    return _of(tenant, User.objects.filter(tenant=tenant, pk=uid).first()) if uid is not None else None


def user_get(*, tenant, user_id, viewer: User) -> User:
    """A user of the tenant whom ``viewer`` may see; any other id (another tenant's, an
    operator's, none at all) is the same 404, so the answer does not tell them apart."""
    uid = as_uuid(user_id)
    user = None if uid is None else user_list(tenant=tenant, viewer=viewer).filter(pk=uid).first()
    if user is None:
        raise Http404("No such user.")
    return _of(tenant, user)


def audit_event_list(*, tenant, user: User, viewer: User) -> QuerySet[AuditEvent]:
    """A user's events in the tenant, as ``viewer`` may see them (the Users API's events)."""
    return audit_events_seen_by(viewer=viewer, events=AuditEvent.objects.filter(tenant=tenant, user=user))


def user_get_by_username(*, tenant, username: str) -> User | None:
    """The password step's look-up (already normalized names are unchanged by normalizing)."""
    name = normalize_username(username)
    return _of(tenant, User.objects.filter(tenant=tenant, username=name).first()) if name else None


def tenant_and_user_by_username(*, tenant_id: str, username: str) -> tuple[Tenant, User | None]:
    """The API password step's read: the tenant named in the URL (404 when there is none) and
    its user ``username`` (None when there is none), in one statement where ``tenant_get``
    and ``user_get_by_username`` take two: the tenant LEFT JOIN its user of that name (a
    ``FilteredRelation`` followed by ``select_related``). Both answers cost that one
    statement, so its time does not tell whether the user exists."""
    name = sign_in_name(username)
    tenants = Tenant.objects.annotate(
        named=FilteredRelation("users", condition=Q(users__username=name))
    ).select_related("named")
    tenant = tenants.filter(pk=tenant_id).first()
    if tenant is None:
        raise Http404("No such tenant.")
    user = getattr(tenant, "named", None)  # select_related sets it only when the join found a row
    return tenant, _of(tenant, user) if name else None


def reset_token_user(*, tenant, token) -> User | None:
    """The user of the tenant whose live reset token this is, or None (forged, expired, used,
    of another tenant or made before the password last changed: all alike)."""
    uid = reset_token_user_id(token)
    user = user_get_or_none(tenant=tenant, user_id=uid) if uid is not None else None
    return user if user is not None and reset_token_valid(user, token) else None

"""An admin's edit of a user that reaches both domains: the account's fields, password and
lock (``accounts``), and the reset of every factor (``mfa``), all or nothing. Used by the
Users API and the admin."""
from django.db import transaction

from accounts.audit import RequestContext
from accounts.models import User
from accounts.services import user_update
from mfa.setup import mfa_reset


def user_change(
    *, user: User, actor: User | None = None, ctx: RequestContext | None = None, reset_mfa: bool = False, **changes
) -> User:
    """``accounts.services.user_update`` (fields, ``password``, ``unlock``) and, with
    ``reset_mfa``, ``mfa.setup.mfa_reset``, in one transaction: the steps that can be refused
    come first, and nothing changes when any is refused."""
    with transaction.atomic():
        user_update(user=user, actor=actor, ctx=ctx, **changes)
        if reset_mfa:
            mfa_reset(user=user, actor=actor, ctx=ctx)
    return user

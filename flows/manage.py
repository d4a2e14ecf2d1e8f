"""An admin's edit of a user that reaches both domains: the account's fields, password and
lock (``accounts``), and the reset of every factor (``mfa``), all or nothing. Used by the
Users API and the admin."""
from django.db import transaction

from accounts.audit import RequestContext
from accounts.models import User
from accounts.services import password_reset_send, user_update
from mfa.setup import mfa_reset


def user_change(
    *, user: User, actor: User | None = None, ctx: RequestContext | None = None, reset_mfa: bool = False,
    send_password_reset: bool = False, link_base: str = "", **changes
) -> User:
    """``accounts.services.user_update`` (fields, ``password``, ``unlock``), with
    ``reset_mfa`` ``mfa.setup.mfa_reset``, and with ``send_password_reset`` a reset link
    mailed to the user (``accounts.services.password_reset_send``, links under ``link_base``),
    in one transaction: the steps that can be refused come first, the link last (it is made
    for the user's state after the other changes), and nothing changes when any is refused or
    the mail cannot be queued."""
    with transaction.atomic():
        user_update(user=user, actor=actor, ctx=ctx, **changes)
        if reset_mfa:
            mfa_reset(user=user, actor=actor, ctx=ctx)
        if send_password_reset:
            password_reset_send(user=user, link_base=link_base, actor=actor, ctx=ctx)
    return user

"""Recovery codes: made when the app is set up and on regeneration, each used once, stored
only as keyed hashes (``mfa/recovery.py`` makes and normalizes them, without the ORM)."""
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import RequestContext, audit_record
from accounts.models import AuditEvent, User
from mfa import crypto, recovery
from mfa.models import RecoveryCode


def _hash(user: User, code: str) -> str:
    """A recovery code at rest: a keyed hash (HMAC under a key from SECRET_KEY), so a database
    dump alone cannot test guesses, and a code is found by equality in one statement."""
    return crypto.keyed_hash(f"{user.pk}:{code}", purpose="recovery-code")


def recovery_codes_replace(*, user: User, ctx: RequestContext | None = None) -> list[str]:
    """A new set of recovery codes; the old set, if any, stops working, and replacing it is
    audited as a regeneration (the first set comes with the app's set-up, audited as that).
    Returns the plain codes, once."""
    codes = [recovery.generate_code() for _ in range(settings.MFA_RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        replaced = RecoveryCode.objects.filter(user=user).delete()[0]
        RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_hash(user, recovery.normalize(c))) for c in codes])
        if replaced:
            audit_record(kind=AuditEvent.Kind.RECOVERY_CODES_REGENERATED, tenant_id=user.tenant_id, user=user, ctx=ctx)
    return codes


def recovery_codes_left(*, user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def recovery_code_use(*, user: User, raw: str) -> bool:
    """Use a recovery code once: the look-up and the write are one conditional UPDATE."""
    code = recovery.normalize(raw)
    if code is None:
        return False
    unused = RecoveryCode.objects.filter(user=user, code_hash=_hash(user, code), used_at__isnull=True)
    return unused.update(used_at=timezone.now()) == 1

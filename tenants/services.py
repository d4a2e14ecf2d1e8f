from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from tenants.models import Tenant

POLICY_FIELDS = (
    "mfa_max_attempts",
    "password_max_attempts",
    "lockout_seconds",
    "mfa_required",
    "email_code_ttl_seconds",
    "email_resend_seconds",
    "issuer",
    "password_min_length",
    "password_reset_ttl_seconds",
)


def tenant_create(*, tenant_id: str, name: str, **policy: Any) -> Tenant:
    """Create a tenant with the policy given; what is not given (or None) takes the field's
    default on ``Tenant``, the one home of the defaults for new tenants."""
    unknown = set(policy) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"Unknown policy fields: {sorted(unknown)}")
    tenant = Tenant(id=tenant_id, name=name, **{k: v for k, v in policy.items() if v is not None})
    tenant.full_clean()  # includes the unique check on the id
    with transaction.atomic():
        tenant.save(force_insert=True)
    return tenant


def tenant_update_policy(*, tenant: Tenant, **changes: Any) -> Tenant:
    """Change a tenant's name and/or policy; all values are validated before anything is saved."""
    unknown = set(changes) - set(POLICY_FIELDS) - {"name"}
    if unknown:
        raise ValidationError({field: "Unknown field." for field in sorted(unknown)})
    if not changes:
        return tenant
    updated = Tenant.objects.get(pk=tenant.pk)
    for field, value in changes.items():
        setattr(updated, field, value)
    updated.full_clean()
    updated.save(update_fields=list(changes))
    for field, value in changes.items():
        setattr(tenant, field, value)
    return updated

from django.db import DatabaseError
from django.http import Http404

from tenants.models import Tenant


def tenant_get(*, tenant_id: str) -> Tenant:
    """The tenant named in a URL, or 404. Every API and page request starts here."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant


def tenant_exists(*, tenant_id: str) -> bool:
    return Tenant.objects.filter(pk=tenant_id).exists()


def tenant_default_language(*, tenant_id: str) -> str | None:
    """The tenant's default language, or None (no such tenant, or the database is down: the
    view then answers that itself, as it would without this look-up)."""
    try:
        return Tenant.objects.filter(pk=tenant_id).values_list("default_language", flat=True).first()
    except DatabaseError:
        return None

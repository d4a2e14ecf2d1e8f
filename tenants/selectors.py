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

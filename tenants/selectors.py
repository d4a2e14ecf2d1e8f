from django.http import Http404

from tenants.models import Tenant


def tenant_get(*, tenant_id: str) -> Tenant:
    """The tenant named in a URL, or 404."""
    try:
        return Tenant.objects.get(pk=tenant_id)
    except Tenant.DoesNotExist:
        raise Http404("No such tenant.") from None

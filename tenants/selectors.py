from django.http import Http404

from config import sql
from tenants.models import Tenant


def tenant_get(*, tenant_id: str) -> Tenant:
    """The tenant named in a URL, or 404. Every API and page request starts here (``config.sql``)."""
    tenant = sql.get(Tenant, pk=tenant_id)
    if tenant is None:
        raise Http404("No such tenant.")
    return tenant

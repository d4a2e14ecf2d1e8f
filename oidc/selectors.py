"""Reads of a tenant's clients: always through the tenant."""
from oidc.models import Application


def client_get_or_none(*, tenant_id: str, client_id) -> Application | None:
    """The tenant's client with this ``client_id``, or None (another tenant's is None too)."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255 or "\x00" in client_id:
        return None
    return Application.objects.filter(tenant_id=tenant_id, client_id=client_id).select_related("tenant").first()


def client_list(*, tenant_id: str):
    return Application.objects.filter(tenant_id=tenant_id).order_by("created", "pk")


def client_origins(*, tenant_id: str) -> list[str]:
    """Every origin any client of the tenant allows (CORS)."""
    origins = []
    for value in Application.objects.filter(tenant_id=tenant_id).exclude(allowed_origins="").values_list("allowed_origins", flat=True):
        origins.extend(value.split())
    return origins

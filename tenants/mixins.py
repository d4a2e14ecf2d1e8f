from tenants.selectors import tenant_get


class TenantMixin:
    """Resolve ``self.tenant`` from the URL's ``tenant_id`` (404 when there is none)."""

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.tenant = tenant_get(tenant_id=kwargs["tenant_id"])
        request.tenant_logo_url = self.tenant.logo_url  # its origin joins the page's img-src (config.middleware)

    def get_context_data(self, **kwargs):
        return super().get_context_data(tenant=self.tenant, **kwargs)

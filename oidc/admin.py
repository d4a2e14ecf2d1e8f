"""A tenant's OpenID Connect clients in the admin site, scoped like every admin page
(``tenants.admin.TenantScopedAdminMixin``). DOT registers this class for the swapped model
(``OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"]``); its token and code admins are not offered
(``GatehouseAdminSite.not_offered``): they would show credentials.

Saving goes through ``oidc.services``; a new confidential client's secret is shown once, on
the page that answers the save, and never again (only its hash is stored)."""
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from oidc.services import client_create, client_update
from tenants.admin import TenantScopedAdminMixin

EDITABLE = ("name", "redirect_uris", "post_logout_redirect_uris", "allowed_origins", "skip_authorization")


class ClientAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "client_id", "client_type", "skip_authorization", "created")
    search_fields = ("name", "client_id")
    fields = ("tenant", "name", "client_id", "client_type", "redirect_uris", "post_logout_redirect_uris", "allowed_origins", "skip_authorization", "created")
    readonly_fields = ("client_id", "created")

    def get_readonly_fields(self, request, obj=None):
        # The id and the type never change; make a new client for another type.
        return (*self.readonly_fields, "tenant", "client_type") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            client_update(client=obj, **{f: form.cleaned_data[f] for f in EDITABLE if f in form.changed_data})
            return
        created, secret = client_create(
            tenant=form.cleaned_data["tenant"], client_type=form.cleaned_data["client_type"],
            **{f: form.cleaned_data[f] for f in EDITABLE},
        )
        obj.pk, obj.client_id = created.pk, created.client_id
        # On the instance of this request, never on the admin: one ModelAdmin serves every
        # request of the process, so a secret kept there could be shown to another admin.
        obj.secret_shown_once = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(obj, "secret_shown_once", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "title": _("Client secret"), "client": obj, "secret": secret, "opts": self.model._meta}
        return TemplateResponse(request, "admin/oidc/application/secret.html", context)

"""The tenant's settings in the admin site, and the one rule every admin page follows: scoping.

A platform operator (``is_superuser``) sees every tenant. A tenant admin sees only their
own tenant: its row here, its users and its audit events (``accounts/admin.py``). Every
``ModelAdmin`` of the project inherits ``TenantScopedAdminMixin``, which scopes the
queryset, the foreign-key choices and the object lookups; an object of another tenant is
a 404 (not a 403 or a redirect), so its existence is not revealed.
"""
from django.contrib import admin
from django.http import Http404

from accounts.models import User
from accounts.selectors import sees_operators, user_list
from tenants.models import Tenant
from tenants.services import POLICY_FIELDS, tenant_create, tenant_update_policy


def is_operator(request) -> bool:
    """The signed-in admin is a platform operator: the people who see operators
    (``accounts.selectors.sees_operators``) are the ones who see every tenant."""
    return sees_operators(viewer=request.user)


class TenantScopedAdminMixin:
    """Scope a ModelAdmin to the signed-in admin's tenant (operators see everything).

    ``tenant_lookup`` is the queryset lookup from the model to the tenant's id.
    """

    tenant_lookup = "tenant_id"

    def scope_queryset(self, request, queryset):
        if is_operator(request):
            return queryset
        return queryset.filter(**{self.tenant_lookup: request.user.tenant_id})

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        """Another tenant's object (or none at all) is a 404 on every object page:
        change, delete, history and the password and action pages built on this."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not is_operator(request):
            if db_field.related_model is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk=request.user.tenant_id)
            elif db_field.related_model is User:
                kwargs["queryset"] = user_list(tenant=request.user.tenant_id, viewer=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_display(self, request):
        display = super().get_list_display(request)
        if is_operator(request) and "tenant" not in display and self.tenant_lookup != "pk":
            return (*display[:1], "tenant", *display[1:])
        return display

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if is_operator(request) and self.tenant_lookup != "pk":
            return (*filters, "tenant")
        return filters


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """A tenant's name and its whole MFA and lockout policy (the contract's policy table).

    Values are checked by the model's validators (a message beside the field) and saved
    through ``tenants.services``, like the Settings API. Only operators add or delete tenants.
    """

    tenant_lookup = "pk"
    list_display = ("id", "name", "mfa_required", "mfa_max_attempts", "password_max_attempts", "lockout_seconds")
    search_fields = ("id", "name")
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("id", "name", "created_at")}),
        (
            "Second factor",
            {"fields": ("mfa_required", "issuer")},
        ),
        (
            "Failed attempts and lockout",
            {
                "description": (
                    "Failures are counted per person, across every page, app and server. When a "
                    "limit is reached the account is locked for the lockout period: even the right "
                    "password or code is refused until it ends, or until an admin unlocks the account "
                    "from its page under Users. A successful sign-in starts the counts again."
                ),
                "fields": ("password_max_attempts", "mfa_max_attempts", "lockout_seconds"),
            },
        ),
        (
            "Emailed codes",
            {"fields": ("email_code_ttl_seconds", "email_resend_seconds")},
        ),
        (
            "Passwords",
            {
                "description": (
                    "The rules apply wherever a password is set: the reset and change pages, the API, "
                    "this admin and the command line. A reset link's mail is also held to the resend gap above."
                ),
                "fields": ("password_min_length", "password_reset_ttl_seconds"),
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        # The id is in every URL: chosen once, never changed.
        return (*self.readonly_fields, "id") if obj is not None else self.readonly_fields

    def has_add_permission(self, request):
        return is_operator(request)

    def has_delete_permission(self, request, obj=None):
        return is_operator(request)

    def save_model(self, request, obj, form, change):
        if change:
            tenant_update_policy(tenant=obj, **{f: form.cleaned_data[f] for f in form.changed_data})
        else:
            tenant_create(
                tenant_id=obj.id, name=obj.name, **{f: form.cleaned_data[f] for f in POLICY_FIELDS if f in form.cleaned_data}
            )

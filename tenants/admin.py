"""The tenant's settings in the admin site, and the one rule every admin page follows: scoping.

A platform operator (``is_superuser``) sees every tenant. A tenant admin sees only their
own tenant: its row here, its users and its audit events (``accounts/admin.py``). Every
``ModelAdmin`` of the project inherits ``TenantScopedAdminMixin``, which scopes the
queryset, the foreign-key choices, the object lookups and the history pages (no operator's
entry); an object of another tenant is a 404 (not a 403 or a redirect), so its existence is
not revealed.
"""
from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import log_entries_seen_by, sees_operators, user_list
from tenants.models import SECOND_FACTORS, Tenant
from tenants.services import BRANDING_FIELDS, POLICY_FIELDS, tenant_create, tenant_update_policy


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

    def history_view(self, request, object_id, extra_context=None):
        """Django's history page, without the entries operators made (it names who made each):
        its page of entries is made again from the same entries, those the viewer may see."""
        response = super().history_view(request, object_id, extra_context)
        context = getattr(response, "context_data", None)
        if is_operator(request) or not context or "action_list" not in context:
            return response
        entries = log_entries_seen_by(viewer=request.user, entries=context["action_list"].paginator.object_list)
        paginator = self.get_paginator(request, entries, 100)
        page = paginator.get_page(request.GET.get(PAGE_VAR, 1))
        context.update(
            action_list=page, page_range=paginator.get_elided_page_range(page.number), pagination_required=paginator.count > 100
        )
        return response

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


METHOD_LABELS = {"totp": _("Authenticator app"), "email": _("Emailed code"), "webauthn": _("Passkey or security key")}


class TenantForm(forms.ModelForm):
    """The policy, with the allowed second factors as checkboxes (the model keeps a JSON list)."""

    allowed_methods = forms.MultipleChoiceField(
        label=_("Allowed second factors"),
        choices=[(method, METHOD_LABELS[method]) for method in SECOND_FACTORS],
        widget=forms.CheckboxSelectMultiple,
        help_text=Tenant._meta.get_field("allowed_methods").help_text,
        error_messages={"required": _("Allow at least one second factor.")},
    )

    class Meta:
        model = Tenant
        fields = "__all__"

    def clean_allowed_methods(self):
        chosen = self.cleaned_data["allowed_methods"]
        return [method for method in SECOND_FACTORS if method in chosen]


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """A tenant's name and its whole MFA and lockout policy (the contract's policy table).

    Values are checked by the model's validators (a message beside the field) and saved
    through ``tenants.services``, like the Settings API. Only operators add or delete tenants.
    """

    tenant_lookup = "pk"
    form = TenantForm
    list_display = ("id", "name", "mfa_required", "mfa_max_attempts", "password_max_attempts", "lockout_seconds")
    search_fields = ("id", "name")
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("id", "name", "created_at")}),
        (
            _("Second factor"),
            {"fields": ("mfa_required", "allowed_methods", "remember_device_days", "issuer")},
        ),
        (
            _("Failed attempts and lockout"),
            {
                "description": _(
                    "Failures are counted per person, across every page, app and server. When a "
                    "limit is reached the account is locked for the lockout period: even the right "
                    "password or code is refused until it ends, or until an admin unlocks the account "
                    "from its page under Users. A successful sign-in starts the counts again."
                ),
                "fields": ("password_max_attempts", "mfa_max_attempts", "lockout_seconds"),
            },
        ),
        (
            _("Emailed codes"),
            {"fields": ("email_code_ttl_seconds", "email_resend_seconds")},
        ),
        (
            _("Passwords"),
            {
                "description": _(
                    "The rules apply wherever a password is set: the reset and change pages, the API, "
                    "this admin and the command line. A reset link's mail is also held to the resend gap above."
                ),
                "fields": ("password_min_length", "password_reset_ttl_seconds"),
            },
        ),
        (
            _("Language and appearance"),
            {
                "description": _("How the sign-in pages and emails look to this tenant's people."),
                "fields": ("default_language", "logo_url", "accent_color"),
            },
        ),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "logo_url":
            kwargs["assume_scheme"] = "https"  # a logo is only ever https:// (validate_logo_url)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

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
                tenant_id=obj.id, name=obj.name,
                **{f: form.cleaned_data[f] for f in (*POLICY_FIELDS, *BRANDING_FIELDS) if f in form.cleaned_data},
            )

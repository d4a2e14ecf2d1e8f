"""The only authentication backend: users are found by tenant and username together.

Django's ``ModelBackend`` looks a user up by username alone, which is ambiguous once two
tenants share a username, and it knows nothing of lockout or MFA; it is not installed.
Sign-in goes through ``accounts.services.password_sign_in`` and the MFA step; this backend
only re-loads the signed-in user for each request and answers permission checks.
"""
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import Permission

from accounts.models import User


class TenantBackend(BaseBackend):
    def authenticate(self, request, **credentials):
        # Deliberately never authenticates: a password alone must not produce a session.
        return None

    def get_user(self, user_id):
        user = User.objects.select_related("tenant").filter(pk=user_id).first()
        return user if user is not None and user.is_active else None

    def _perms(self, user_obj) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous:
            return set()
        if user_obj.is_superuser:
            return {f"{app}.{code}" for app, code in Permission.objects.values_list("content_type__app_label", "codename")}
        if user_obj.is_tenant_admin:
            return TENANT_ADMIN_PERMISSIONS
        return set()

    def get_all_permissions(self, user_obj, obj=None):
        return self._perms(user_obj)

    def has_perm(self, user_obj, perm, obj=None):
        return perm in self._perms(user_obj)

    def has_module_perms(self, user_obj, app_label):
        return any(p.startswith(f"{app_label}.") for p in self._perms(user_obj))


# What a tenant admin may do in the admin site; each ModelAdmin scopes it to their tenant.
TENANT_ADMIN_PERMISSIONS = frozenset(
    {
        "accounts.view_user",
        "accounts.add_user",
        "accounts.change_user",
        "accounts.delete_user",
        "accounts.view_auditevent",
        "tenants.view_tenant",
        "tenants.change_tenant",
        # The tenant's OpenID Connect clients (oidc/admin.py).
        "oidc.view_application",
        "oidc.add_application",
        "oidc.change_application",
        "oidc.delete_application",
    }
)

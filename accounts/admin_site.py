"""The admin site: tenant admins run their tenant from it, platform operators run every tenant.

Signing in
    The admin has no password form of its own. ``/admin/login/`` sends people to Gatehouse's
    sign-in (``/login/`` asks for the tenant id, then ``/tenant/ID/login/?next=/admin/``), so the
    admin is reached through the same password step, lockout and second factor as every other
    page. A pending sign-in (password right, code not yet given) is not a sign-in: it opens no
    admin page. As a second line, the admin also refuses a session that did not pass a second
    factor when the person needs one (``User.needs_second_factor``): see ``has_permission``.
    Only ``accounts.backends.TenantBackend`` is installed; Django's ``ModelBackend`` is not, so
    two tenants with the same username never make a sign-in ambiguous.

Operators
    A platform operator is a superuser who belongs to an operators' tenant, like any other user,
    and signs in through it — typically ``ops``::

        python manage.py create_tenant ops --name "Platform operators" --mfa-required
        python manage.py create_user ops root --email root@example.com --password … --superuser

    then ``/admin/`` → tenant ``ops`` → username and password → second factor. With
    ``--mfa-required`` the operator must set up a second factor at first sign-in. An operators'
    tenant is an ordinary tenant: it needs no special case in the sign-in code, its own lockout
    policy applies, and its usernames cannot collide with a customer's.

The site is installed as Django's default one by ``accounts.admin_apps.GatehouseAdminConfig``;
the models' pages are in ``accounts/admin.py`` and ``tenants/admin.py``.
"""
from django.contrib import admin
from django.db.models.base import ModelBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from accounts.audit import RequestContext
from accounts.services import sign_out_record
from flows import pending as pending_sign_in
from django.utils.translation import gettext_lazy as _


def admin_ctx(request) -> RequestContext:
    """The audit trail's context for what an admin does here: their address, on channel ``admin``."""
    return RequestContext.from_request(request, channel="admin")


class GatehouseAdminSite(admin.AdminSite):
    site_header = _("Gatehouse administration")
    site_title = "Gatehouse"
    index_title = _("Tenant administration")
    # No navigation sidebar: with it and the filters, a list left the table 630 px of a
    # 1280 px window and the users list scrolled sideways (issue 21). The index and the
    # breadcrumbs lead everywhere the sidebar did.
    enable_nav_sidebar = False
    site_url = None

    # Registered by other apps, never offered here: groups (``TenantBackend`` grants permissions
    # by role, not by group) and simplejwt's token-blacklist admins, which would show whole
    # refresh tokens (credentials) to operators.
    # The same for django-oauth-toolkit's tokens and codes (its clients are offered: oidc/admin.py).
    not_offered = frozenset({
        "auth.group", "token_blacklist.outstandingtoken", "token_blacklist.blacklistedtoken",
        "oauth2_provider.accesstoken", "oauth2_provider.refreshtoken", "oauth2_provider.idtoken", "oidc.grant",
    })

    def register(self, model_or_iterable, admin_class=None, **options):
        models = [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else model_or_iterable
        offered = [model for model in models if model._meta.label_lower not in self.not_offered]
        super().register(offered, admin_class, **options)

    def has_permission(self, request) -> bool:
        """An active staff member (tenant admin or operator) whose session finished Gatehouse's
        sign-in, with a second factor whenever they need one."""
        user = request.user
        if not (user.is_active and user.is_staff and (user.is_superuser or user.is_tenant_admin)):
            return False
        amr = request.session.get(pending_sign_in.AMR_SESSION_KEY) or []
        return "mfa" in amr if user.needs_second_factor else bool(amr)

    def login(self, request, extra_context=None):
        """The admin's own password form is never used: sign-in goes through Gatehouse, with MFA.

        Someone already signed in who may not use the admin gets a page saying so (sending them to
        the sign-in again would only bring them back here).
        """
        index = reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return redirect(index)
        if request.user.is_authenticated:
            context = {**self.each_context(request), "title": _("No access to the admin site")}
            return TemplateResponse(request, "admin/gatehouse_no_access.html", context, status=403)
        next_url = request.GET.get("next") or index
        return redirect(f"{reverse('operator-login')}?{urlencode({'next': next_url})}")

    def logout(self, request, extra_context=None):
        """Django's sign-out, audited."""
        if request.method == "POST" and request.user.is_authenticated:
            sign_out_record(user=request.user, ctx=admin_ctx(request))
        return super().logout(request, extra_context)

    def password_change(self, request, extra_context=None):
        """"Change password" in the header: the admin's own user page's password form, which
        goes through ``user_set_password`` (validated, refresh tokens revoked, audited)."""
        return redirect(f"{self.name}:auth_user_password_change", request.user.pk)

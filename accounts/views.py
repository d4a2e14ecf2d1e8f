"""The sign-in and account pages: thin front doors onto ``flows.signin`` and the services."""
import re
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView, View

from accounts.audit import RequestContext
from accounts.forms import SignInForm, OperatorTenantForm
from accounts.ratelimit import RateLimitedPostMixin
from accounts.services import sign_out_record
from flows import pending as pending_sign_in
from flows import recovery_display
from flows.signin import account_url, page_password_passed, safe_next
from mfa.recovery_codes import recovery_codes_left, recovery_codes_replace
from mfa.setup import totp_confirmed
from tenants.mixins import TenantMixin
from tenants.selectors import tenant_exists


def signed_in_here(request, tenant) -> bool:
    user = request.user
    return user.is_authenticated and user.tenant_id == tenant.id


@method_decorator([never_cache, sensitive_post_parameters("password")], name="dispatch")
class SignInView(RateLimitedPostMixin, TenantMixin, FormView):
    template_name = "accounts/login.html"
    form_class = SignInForm

    def get(self, request, *args, **kwargs):
        if signed_in_here(request, self.tenant):
            return redirect(safe_next(request, request.GET.get("next")) or account_url(self.tenant.id))
        return super().get(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "tenant": self.tenant, "ctx": RequestContext.from_request(self.request, channel="web")}

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=safe_next(self.request, self.request.GET.get("next")) or "", **kwargs)

    def form_valid(self, form):
        next_url = safe_next(self.request, self.request.POST.get("next") or self.request.GET.get("next"))
        if self.request.user.is_authenticated:
            logout(self.request)
        return page_password_passed(self.request, self.tenant, form.user, next_url=next_url)


@method_decorator(never_cache, name="dispatch")
class AccountView(TenantMixin, TemplateView):
    template_name = "accounts/account.html"

    def dispatch(self, request, *args, **kwargs):
        if not signed_in_here(request, self.tenant):
            login_url = reverse("accounts:login", kwargs={"tenant_id": self.tenant.id})
            return redirect(f"{login_url}?next={request.path}")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        user = self.request.user
        return super().get_context_data(
            user=user,
            totp_confirmed=totp_confirmed(user),
            recovery_left=recovery_codes_left(user=user),
            amr=self.request.session.get(pending_sign_in.AMR_SESSION_KEY, []),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if request.POST.get("action") != "regenerate-recovery-codes" or not totp_confirmed(request.user):
            messages.error(request, _("That action is not available."))
            return redirect("accounts:account", tenant_id=self.tenant.id)
        codes = recovery_codes_replace(user=request.user, ctx=RequestContext.from_request(request, channel="web"))
        # Post/Redirect/Get: the codes wait in the session until the person saved them.
        recovery_display.codes_hold(request, codes=codes, continue_url=account_url(self.tenant.id), regenerated=True)
        return redirect("mfa:recovery_codes", tenant_id=self.tenant.id)


@method_decorator(never_cache, name="dispatch")
class LogoutView(TenantMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if signed_in_here(request, self.tenant):
            sign_out_record(user=request.user, ctx=RequestContext.from_request(request, channel="web"))
        logout(request)  # flushes the session: a pending sign-in ends too
        messages.info(request, _("You have signed out."))
        return redirect("accounts:login", tenant_id=self.tenant.id)


@method_decorator(never_cache, name="dispatch")
class OperatorSignInView(FormView):
    """``/login/``: ask which tenant, then hand over to that tenant's sign-in (``?next=`` kept).

    The admin site's own login page sends people here, so ``/admin/`` is reached only
    through Gatehouse's sign-in, with MFA.
    """

    template_name = "accounts/operator_login.html"
    form_class = OperatorTenantForm

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=safe_next(self.request, self.request.GET.get("next")) or "", **kwargs)

    def form_valid(self, form):
        tenant_id = form.cleaned_data["tenant"]
        if not tenant_exists(tenant_id=tenant_id):
            form.add_error("tenant", _("There is no tenant with that id."))
            return self.form_invalid(form)
        url = reverse("accounts:login", kwargs={"tenant_id": tenant_id})
        next_url = safe_next(self.request, self.request.POST.get("next"))
        return redirect(f"{url}?next={next_url}" if next_url else url)


class BrandCssView(TenantMixin, View):
    """The tenant's accent colour as a stylesheet (the pages' CSP allows no inline style)."""

    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        colour = self.tenant.accent_color
        css = f":root {{ --accent: {colour}; }}\n" if re.fullmatch(r"#[0-9a-fA-F]{6}", colour or "") else ""
        return HttpResponse(css, content_type="text/css; charset=utf-8")

"""The sign-in and account pages: thin front doors onto ``flows.signin`` and the services."""
import re

from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView, View

from accounts.audit import RequestContext
from accounts.errors import AuthFailure, InvalidResetToken
from accounts.forms import ForgotForm, NewPasswordForm, OperatorTenantForm, PasswordChangeForm, SignInForm, as_validation_error
from accounts.models import MfaMethod
from accounts.passwords import password_rules_text
from accounts.ratelimit import RateLimitedPostMixin
from accounts.selectors import reset_token_user
from accounts.services import sign_out_record
from flows.password import forgot, page_change, reset
from flows import pending as pending_sign_in
from flows import recovery_display
from flows.signin import account_url, page_forget_cookie, page_password_passed, safe_next
from mfa.passkeys import passkey_list
from mfa.remember import remembered_browser_count, remembered_browsers_forget
from mfa.recovery_codes import recovery_codes_left, recovery_codes_replace
from mfa.setup import mfa_enrolled, totp_confirmed
from tenants.mixins import TenantMixin
from tenants.selectors import tenant_exists


def signed_in_here(request, tenant) -> bool:
    user = request.user
    return user.is_authenticated and user.tenant_id == tenant.id


def sign_in_redirect(tenant, *, next_url: str):
    """To this tenant's sign-in page, and back to ``next_url`` once signed in."""
    login_url = reverse("accounts:login", kwargs={"tenant_id": tenant.id})
    return redirect(f"{login_url}?next={next_url}")


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
            return sign_in_redirect(self.tenant, next_url=request.path)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        user = self.request.user
        return super().get_context_data(
            user=user,
            totp_confirmed=totp_confirmed(user),
            uses_recovery_codes=user.mfa_method in (MfaMethod.TOTP, MfaMethod.WEBAUTHN) and mfa_enrolled(user),
            passkeys=list(passkey_list(user=user)),
            remembered_browsers=remembered_browser_count(user=user),
            recovery_left=recovery_codes_left(user=user),
            amr=self.request.session.get(pending_sign_in.AMR_SESSION_KEY, []),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        user = request.user
        if request.POST.get("action") == "forget-browsers":
            remembered_browsers_forget(user=user, ctx=RequestContext.from_request(request, channel="web"))
            messages.success(request, _("Every browser now asks for your second factor again."))
            response = redirect("accounts:account", tenant_id=self.tenant.id)
            page_forget_cookie(response, self.tenant.id)
            return response
        if request.POST.get("action") != "regenerate-recovery-codes" or user.mfa_method not in (MfaMethod.TOTP, MfaMethod.WEBAUTHN) or not mfa_enrolled(user):
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


# --- password self-service (flows.password) ---------------------------------------------------

@method_decorator([never_cache, sensitive_post_parameters("login")], name="dispatch")
class PasswordForgotView(RateLimitedPostMixin, TenantMixin, FormView):
    """The same page answers every request, whether or not an account matches."""

    template_name = "accounts/password_forgot.html"
    form_class = ForgotForm

    def form_valid(self, form):
        forgot(request=self.request, tenant=self.tenant, login=form.cleaned_data["login"],
               ctx=RequestContext.from_request(self.request, channel="web"))
        return render(self.request, "accounts/password_forgot_sent.html", {"tenant": self.tenant})


@method_decorator([never_cache, sensitive_post_parameters("new_password1", "new_password2")], name="dispatch")
class PasswordResetView(RateLimitedPostMixin, TenantMixin, FormView):
    """``password/reset/TOKEN/``: the new password, twice. A bad link, whatever is wrong with
    it, gets one page offering a new one (200: Django logs the path of every 4xx). The token
    is kept out of logs (``config.logging.redact``, gunicorn's ``RedactingLogger``), out of the
    session and the database, and out of Referer headers (``Referrer-Policy: no-referrer``)."""

    template_name = "accounts/password_reset.html"
    form_class = NewPasswordForm

    def dispatch(self, request, *args, **kwargs):
        self.token = kwargs["token"]
        if request.method != "POST" and reset_token_user(tenant=self.tenant, token=self.token) is None:
            response = self.invalid_link()
        else:
            response = super().dispatch(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        return response

    def invalid_link(self):
        return render(self.request, "accounts/password_reset_invalid.html", {"tenant": self.tenant})

    def get_context_data(self, **kwargs):
        return super().get_context_data(rules=password_rules_text(self.tenant), **kwargs)

    def form_valid(self, form):
        try:
            reset(tenant=self.tenant, token=self.token, new_password=form.cleaned_data["new_password1"],
                  ctx=RequestContext.from_request(self.request, channel="web"))
        except InvalidResetToken:
            return self.invalid_link()
        except ValidationError as exc:
            form.add_service_error(exc)
            return self.form_invalid(form)
        messages.success(self.request, _("Your new password is set. Sign in with it, then with your second factor if you have one."))
        return redirect("accounts:login", tenant_id=self.tenant.id)


@method_decorator([never_cache, sensitive_post_parameters("current_password", "new_password1", "new_password2")], name="dispatch")
class PasswordChangeView(RateLimitedPostMixin, TenantMixin, FormView):
    """A signed-in user's new password: this browser stays signed in, every other ends."""

    template_name = "accounts/password_change.html"
    form_class = PasswordChangeForm

    def dispatch(self, request, *args, **kwargs):
        if not signed_in_here(request, self.tenant):
            return sign_in_redirect(self.tenant, next_url=request.path)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(rules=password_rules_text(self.tenant), **kwargs)

    def form_valid(self, form):
        try:
            page_change(self.request, current_password=form.cleaned_data["current_password"],
                        new_password=form.cleaned_data["new_password1"])
        except AuthFailure as exc:
            form.add_error("current_password", as_validation_error(exc))
            return self.form_invalid(form)
        except ValidationError as exc:
            form.add_service_error(exc)
            return self.form_invalid(form)
        messages.success(self.request, _("Your password has been changed. Other browsers and apps signed in to your account were signed out."))
        return redirect("accounts:account", tenant_id=self.tenant.id)

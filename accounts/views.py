"""The sign-in and account pages: thin front doors onto ``flows.signin`` and the services."""
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.utils.translation import gettext as _
from django.views.generic import FormView, TemplateView, View

from accounts.audit import RequestContext
from accounts.errors import AuthFailure, InvalidResetToken
from accounts.forms import ForgotForm, NewPasswordForm, OperatorTenantForm, PasswordChangeForm, SignInForm, as_validation_error
from accounts.passwords import password_rules_text
from accounts.ratelimit import RateLimitedPostMixin
from accounts.selectors import reset_token_user
from accounts.services import sign_out_record
from flows.password import forgot, page_change, reset
from flows import pending as pending_sign_in
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
            messages.error(request, "That action is not available.")
            return redirect("accounts:account", tenant_id=self.tenant.id)
        codes = recovery_codes_replace(user=request.user, ctx=RequestContext.from_request(request, channel="web"))
        return render(request, "mfa/recovery_codes.html", {"tenant": self.tenant, "codes": codes, "regenerated": True,
                                                            "continue_url": account_url(self.tenant.id)})


@method_decorator(never_cache, name="dispatch")
class LogoutView(TenantMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if signed_in_here(request, self.tenant):
            sign_out_record(user=request.user, ctx=RequestContext.from_request(request, channel="web"))
        logout(request)  # flushes the session: a pending sign-in ends too
        messages.info(request, "You have signed out.")
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
            form.add_error("tenant", "There is no tenant with that id.")
            return self.form_invalid(form)
        url = reverse("accounts:login", kwargs={"tenant_id": tenant_id})
        next_url = safe_next(self.request, self.request.POST.get("next"))
        return redirect(f"{url}?next={next_url}" if next_url else url)


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
            login_url = reverse("accounts:login", kwargs={"tenant_id": self.tenant.id})
            return redirect(f"{login_url}?next={request.path}")
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

"""The sign-in pages: thin front doors onto ``accounts.services`` and ``mfa.pending``."""
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView, View

from accounts.audit import RequestContext, audit_record
from accounts.forms import LoginForm, OperatorTenantForm
from accounts.models import AuditEvent
from accounts.ratelimit import RateLimitedPostMixin
from accounts.services import sign_in_record
from accounts.tokens import AMR_PASSWORD
from mfa import pending as pending_login
from mfa.services import enrollment_needed, recovery_codes_left, recovery_codes_regenerate, totp_confirmed
from tenants.mixins import TenantMixin

NEXT_SESSION_KEY = "gatehouse_next"


def safe_next(request, candidate: str | None) -> str | None:
    """``?next=`` only to a path on this site."""
    if candidate and candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return None


def signed_in_here(request, tenant) -> bool:
    user = request.user
    return user.is_authenticated and user.tenant_id == tenant.id


def continue_sign_in(request, tenant, pending, user) -> HttpResponseRedirect:
    """After a step of the pending sign-in: the next MFA page, or the real sign-in."""
    step = enrollment_needed(user, enroll=pending.enroll)
    if step:
        return redirect(f"mfa:{step}", tenant_id=tenant.id)
    sign_in_record(user=user, ctx=RequestContext.from_request(request, channel="web"))
    return finish_sign_in(request, tenant, user, amr=AMR_PASSWORD)


def finish_sign_in(request, tenant, user, *, amr) -> HttpResponseRedirect:
    """The session hand-off of a sign-in already recorded (``sign_in_record``)."""
    next_url = request.session.pop(NEXT_SESSION_KEY, None)
    pending_login.complete_session_login(request, user, amr=amr)
    return HttpResponseRedirect(safe_next(request, next_url) or reverse("accounts:account", kwargs={"tenant_id": tenant.id}))


@method_decorator([never_cache, sensitive_post_parameters("password")], name="dispatch")
class LoginView(RateLimitedPostMixin, TenantMixin, FormView):
    template_name = "accounts/login.html"
    form_class = LoginForm

    def get(self, request, *args, **kwargs):
        if signed_in_here(request, self.tenant):
            return redirect(safe_next(request, request.GET.get("next")) or reverse("accounts:account", kwargs={"tenant_id": self.tenant.id}))
        return super().get(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "tenant": self.tenant, "ctx": RequestContext.from_request(self.request, channel="web")}

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=safe_next(self.request, self.request.GET.get("next")) or "", **kwargs)

    def form_valid(self, form):
        next_url = safe_next(self.request, self.request.POST.get("next") or self.request.GET.get("next"))
        if self.request.user.is_authenticated:
            logout(self.request)
        pending = pending_login.session_start(self.request, form.user)
        self.request.session.pop(NEXT_SESSION_KEY, None)  # a ?next= of an abandoned sign-in is not this one's
        if next_url:
            self.request.session[NEXT_SESSION_KEY] = next_url
        return continue_sign_in(self.request, self.tenant, pending, form.user)


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
            amr=self.request.session.get(pending_login.AMR_SESSION_KEY, []),
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        if request.POST.get("action") != "regenerate-recovery-codes" or not totp_confirmed(request.user):
            messages.error(request, "That action is not available.")
            return redirect("accounts:account", tenant_id=self.tenant.id)
        codes = recovery_codes_regenerate(user=request.user, ctx=RequestContext.from_request(request, channel="web"))
        return render(request, "mfa/recovery_codes.html", {"tenant": self.tenant, "codes": codes, "regenerated": True,
                                                            "continue_url": reverse("accounts:account", kwargs={"tenant_id": self.tenant.id})})


@method_decorator(never_cache, name="dispatch")
class LogoutView(TenantMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if signed_in_here(request, self.tenant):
            audit_record(kind=AuditEvent.Kind.LOGOUT, tenant_id=self.tenant.id, user=request.user,
                         ctx=RequestContext.from_request(request, channel="web"))
        logout(request)  # flushes the session: a pending sign-in ends too
        messages.info(request, "You have signed out.")
        return redirect("accounts:login", tenant_id=self.tenant.id)


@method_decorator(never_cache, name="dispatch")
class OperatorLoginView(FormView):
    """``/login/``: ask which tenant, then hand over to that tenant's sign-in (``?next=`` kept).

    The admin site's own login page sends people here, so ``/admin/`` is reached only
    through Gatehouse's sign-in, with MFA.
    """

    template_name = "accounts/operator_login.html"
    form_class = OperatorTenantForm

    def get_context_data(self, **kwargs):
        return super().get_context_data(next=safe_next(self.request, self.request.GET.get("next")) or "", **kwargs)

    def form_valid(self, form):
        from tenants.models import Tenant

        tenant_id = form.cleaned_data["tenant"]
        if not Tenant.objects.filter(pk=tenant_id).exists():
            form.add_error("tenant", "There is no tenant with that id.")
            return self.form_invalid(form)
        url = reverse("accounts:login", kwargs={"tenant_id": tenant_id})
        next_url = safe_next(self.request, self.request.POST.get("next"))
        return redirect(f"{url}?next={next_url}" if next_url else url)

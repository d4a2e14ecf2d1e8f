"""The second-factor pages of a pending sign-in: set-up, choose, verify."""
import time

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import FormView

from accounts.errors import AuthFailure
from accounts.forms import as_validation_error
from accounts.models import MfaMethod
from accounts.ratelimit import RateLimitedPostMixin
from flows import pending as pending_sign_in
from flows.signin import page_code, page_continue, page_hand_off
from mfa import totp
from mfa.email_codes import email_code_send, mask_email
from mfa.forms import ChooseForm, CodeForm
from mfa.setup import enrollment_needed, totp_device_begin, totp_provisioning
from tenants.mixins import TenantMixin


@method_decorator(never_cache, name="dispatch")
class PendingStepMixin(TenantMixin):
    """Only for a live pending sign-in whose next step is this page's ``step``."""

    step = ""

    def dispatch(self, request, *args, **kwargs):
        self.pending, self.user = pending_sign_in.session_user(request, tenant=self.tenant)
        if self.pending is None:
            messages.info(request, "Please sign in first. Sign-ins waiting for a code expire after 10 minutes.")
            return redirect("accounts:login", tenant_id=self.tenant.id)
        needed = enrollment_needed(self.user, enroll=self.pending.enroll)
        if needed != self.step:
            return page_continue(request, self.tenant, self.pending, self.user)
        return super().dispatch(request, *args, **kwargs)

    def verify_code(self, form):
        """Judge the form's code (``flows.signin.page_code``); on refusal the reason goes on the field."""
        try:
            return page_code(self.request, self.pending, self.user, form.cleaned_data["code"])
        except AuthFailure as exc:
            form.add_error("code", as_validation_error(exc))
            return None


class ChooseView(RateLimitedPostMixin, PendingStepMixin, FormView):
    step = "choose"
    template_name = "mfa/choose.html"
    form_class = ChooseForm

    def form_valid(self, form):
        self.pending.enroll = form.cleaned_data["method"]
        pending_sign_in.session_save(self.request, self.pending)
        return page_continue(self.request, self.tenant, self.pending, self.user)


class SetupView(RateLimitedPostMixin, PendingStepMixin, FormView):
    step = "setup"
    template_name = "mfa/setup.html"
    form_class = CodeForm

    def get(self, request, *args, **kwargs):
        self.secret = totp_device_begin(user=self.user)  # the app row is made here, not while rendering
        return super().get(request, *args, **kwargs)

    def form_invalid(self, form):
        self.secret = totp_device_begin(user=self.user)  # the same secret, unless an admin reset it meanwhile
        return super().form_invalid(form)

    def get_context_data(self, **kwargs):
        provisioning = totp_provisioning(user=self.user, secret=self.secret)
        return super().get_context_data(
            qr_svg=provisioning["qrSvg"],
            manual_key=totp.format_secret(self.secret),
            issuer=self.tenant.effective_issuer,
            username=self.user.username,
            **kwargs,
        )

    def form_valid(self, form):
        result = self.verify_code(form)
        if result is None:
            return self.form_invalid(form)
        # page_hand_off resolves where to go next (a safe ?next= or the account page); the
        # recovery codes are shown first, with that place as the way on.
        response = page_hand_off(self.request, self.tenant, self.user, amr=result.amr)
        return render(
            self.request,
            "mfa/recovery_codes.html",
            {"tenant": self.tenant, "codes": result.recovery_codes or [], "continue_url": response.url},
        )


class VerifyView(RateLimitedPostMixin, PendingStepMixin, FormView):
    step = "verify"
    template_name = "mfa/verify.html"

    def method(self) -> str:
        return self.pending.enroll or self.user.mfa_method

    def get_form(self, form_class=None):
        return CodeForm(**self.get_form_kwargs(), allow_recovery=self.method() == MfaMethod.TOTP)

    def get(self, request, *args, **kwargs):
        if self.method() == MfaMethod.EMAIL and not self.pending.email_sent_at:
            self._send(announce=False)  # the page itself says where the code went
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if request.POST.get("action") == "resend" and self.method() == MfaMethod.EMAIL:
            self._send(announce=True)
            return redirect("mfa:verify", tenant_id=self.tenant.id)
        return super().post(request, *args, **kwargs)

    def _send(self, *, announce: bool) -> None:
        try:
            email_code_send(user=self.user)
        except AuthFailure as exc:
            messages.error(self.request, exc.message)
            return
        self.pending.email_sent_at = time.time()
        pending_sign_in.session_save(self.request, self.pending)
        if announce:
            messages.success(self.request, f"We sent a new code to {mask_email(self.user.email)}.")

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            method=self.method(), masked_email=mask_email(self.user.email), email_sent=bool(self.pending.email_sent_at), **kwargs
        )

    def form_valid(self, form):
        result = self.verify_code(form)
        if result is None:
            return self.form_invalid(form)
        if result.used_recovery_code:
            messages.warning(self.request, "You signed in with a recovery code. It cannot be used again.")
        return page_hand_off(self.request, self.tenant, self.user, amr=result.amr)

"""The second-factor pages of a pending sign-in: set-up, choose, verify, cancel; and the page
that shows new recovery codes until they are saved."""
import time

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.generic import FormView, View

from accounts import lockout
from accounts.errors import AuthFailure, format_wait
from accounts.forms import as_validation_error
from accounts.models import MfaMethod
from accounts.ratelimit import RateLimitedPostMixin
from accounts.views import signed_in_here
from flows import pending as pending_sign_in
from flows import recovery_display
from flows.signin import account_url, page_code, page_continue, page_hand_off
from mfa import totp
from mfa.email_codes import email_code_send, mask_email
from mfa.forms import ChooseForm, CodeForm, RecoveryCodeForm, SavedCodesForm
from mfa.recovery_codes import recovery_codes_left
from mfa.setup import enrollment_needed, totp_device_begin, totp_provisioning
from tenants.mixins import TenantMixin


@method_decorator(never_cache, name="dispatch")
class PendingStepMixin(TenantMixin):
    """Only for a live pending sign-in whose next step is this page's ``step``."""

    step = ""

    def dispatch(self, request, *args, **kwargs):
        self.pending, self.user = pending_sign_in.session_user(request, tenant=self.tenant)
        if self.pending is None:
            if signed_in_here(request, self.tenant):
                # Back to a code page after the sign-in completed: nothing to do here any more.
                messages.info(request, _("You are already signed in."))
                return redirect(account_url(self.tenant.id))
            messages.info(request, _("Please sign in first. Sign-ins waiting for a code expire after 10 minutes."))
            return redirect("accounts:login", tenant_id=self.tenant.id)
        needed = enrollment_needed(self.user, enroll=self.pending.enroll)
        if needed != self.step:
            return page_continue(request, self.tenant, self.pending, self.user)
        return super().dispatch(request, *args, **kwargs)

    def verify_code(self, form):
        """Judge the form's code (``flows.signin.page_code``); on refusal the reason goes on the field."""
        try:
            return page_code(self.request, self.pending, self.user, form.cleaned_data[form.field_name])
        except AuthFailure as exc:
            form.add_error(form.field_name, as_validation_error(exc))
            return None

    def lockout_context(self) -> dict:
        """A locked account's form is shown disabled, with the time left (the same message the
        server gives on every attempt; ``gatehouse.js`` counts it down, a reload refreshes it)."""
        self.user.refresh_from_db(fields=["locked_until"])
        left = lockout.seconds_left(self.user.locked_until)
        return {"locked_seconds": left, "locked_wait": format_wait(left) if left else ""}


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
            otpauth_uri=provisioning["otpauthUri"],
            manual_key=totp.format_secret(self.secret),
            key_groups=totp.format_secret(self.secret).split(),
            issuer=self.tenant.effective_issuer,
            username=self.user.username,
            **self.lockout_context(),
            **kwargs,
        )

    def form_valid(self, form):
        result = self.verify_code(form)
        if result is None:
            return self.form_invalid(form)
        # page_hand_off resolves where to go next (a safe ?next= or the account page); the
        # recovery codes are shown first (from the session: a reload keeps them), with that
        # place as the way on.
        response = page_hand_off(self.request, self.tenant, self.user, amr=result.amr)
        recovery_display.codes_hold(self.request, codes=result.recovery_codes or [], continue_url=response.url, regenerated=False)
        return redirect("mfa:recovery_codes", tenant_id=self.tenant.id)


class VerifyView(RateLimitedPostMixin, PendingStepMixin, FormView):
    """The code page, in three states (``?use=``): the user's method (default), ``recovery``
    (a recovery code, in its own field) and ``other`` (the other ways the user has)."""

    step = "verify"
    template_name = "mfa/verify.html"

    def method(self) -> str:
        return self.pending.enroll or self.user.mfa_method

    def state(self) -> str:
        use = self.request.GET.get("use", "")
        if use == "recovery" and not self.pending.enroll:
            return "recovery"
        return "other" if use == "other" else ""

    def get_form_class(self):
        return RecoveryCodeForm if self.state() == "recovery" else CodeForm

    def get(self, request, *args, **kwargs):
        if self.method() == MfaMethod.EMAIL and not self.pending.email_sent_at and not self.pending.email_tried and self.state() == "":
            self._send(announce=False)  # the page itself says where the code went
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if request.POST.get("action") == "resend" and self.method() == MfaMethod.EMAIL:
            self._send(announce=True)
            return redirect("mfa:verify", tenant_id=self.tenant.id)
        return super().post(request, *args, **kwargs)

    def _send(self, *, announce: bool) -> None:
        # Tried once: the page after a failed send does not try again by itself (one message).
        self.pending.email_tried = True
        pending_sign_in.session_save(self.request, self.pending)
        try:
            email_code_send(user=self.user)
        except AuthFailure as exc:
            messages.error(self.request, exc.message)
            return
        self.pending.email_sent_at = time.time()
        pending_sign_in.session_save(self.request, self.pending)
        if announce:
            messages.success(self.request, _("We sent a new code to %(email)s.") % {"email": mask_email(self.user.email)})

    def get_context_data(self, **kwargs):
        has_recovery = not self.pending.enroll and recovery_codes_left(user=self.user) > 0
        return super().get_context_data(
            method=self.method(), state=self.state(), has_recovery=has_recovery,
            masked_email=mask_email(self.user.email), email_sent=bool(self.pending.email_sent_at),
            **self.lockout_context(), **kwargs,
        )

    def form_valid(self, form):
        result = self.verify_code(form)
        if result is None:
            return self.form_invalid(form)
        if result.used_recovery_code:
            left = recovery_codes_left(user=self.user)
            messages.warning(self.request, _("You signed in with a recovery code. It cannot be used again; %(left)d left.") % {"left": left})
        return page_hand_off(self.request, self.tenant, self.user, amr=result.amr)


@method_decorator(never_cache, name="dispatch")
class CancelView(TenantMixin, View):
    """"Cancel" on the second-factor pages: the pending sign-in ends, back to the sign-in page."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if pending_sign_in.session_get(request, tenant_id=self.tenant.id) is not None:
            pending_sign_in.session_clear(request)
            messages.info(request, _("Sign-in cancelled. You can start again."))
        return redirect("accounts:login", tenant_id=self.tenant.id)


@method_decorator(never_cache, name="dispatch")
class RecoveryCodesView(TenantMixin, FormView):
    """New recovery codes, from the session (``flows.recovery_display``), until the person
    confirms they saved them: a reload or Back shows them again, ``?download=txt`` gives a
    text file, and the confirmation drops them and goes on."""

    template_name = "mfa/recovery_codes.html"
    form_class = SavedCodesForm

    def dispatch(self, request, *args, **kwargs):
        if not signed_in_here(request, self.tenant):
            login_url = reverse("accounts:login", kwargs={"tenant_id": self.tenant.id})
            return redirect(f"{login_url}?next={account_url(self.tenant.id)}")
        self.held = recovery_display.codes_held(request)
        if self.held is None:
            messages.info(request, _("Your recovery codes are no longer shown here. If you did not save them, make new ones below."))
            return redirect(account_url(self.tenant.id))
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        if request.GET.get("download") == "txt":
            text = recovery_display.codes_as_text(codes=self.held["codes"], tenant_name=self.tenant.name, username=request.user.username)
            response = HttpResponse(text, content_type="text/plain; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="recovery-codes-{self.tenant.id}.txt"'
            return response
        return super().get(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        if self.request.method == "GET" and "unconfirmed" in self.request.GET:
            kwargs["data"] = {}  # back from a POST without the box ticked: show why, on the field
        return kwargs

    def get_context_data(self, **kwargs):
        return super().get_context_data(codes=self.held["codes"], regenerated=self.held["regenerated"], **kwargs)

    def form_invalid(self, form):
        # Post/Redirect/Get here too: no page in the history is a POST's answer.
        return redirect(f"{self.request.path}?unconfirmed=1")

    def form_valid(self, form):
        return redirect(recovery_display.codes_saved(self.request) or account_url(self.tenant.id))

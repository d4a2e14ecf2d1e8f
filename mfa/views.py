"""The second-factor pages of a pending sign-in: set-up, choose, verify, cancel; and the page
that shows new recovery codes until they are saved."""
import time

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.utils.crypto import salted_hmac
from django.views.generic import FormView, View

from accounts import lockout
from accounts.audit import RequestContext
from accounts.errors import AuthFailure, format_wait
from accounts.forms import as_validation_error
from accounts.models import MfaMethod
from accounts.ratelimit import RateLimitedPostMixin
from accounts.views import sign_in_redirect, signed_in_here
from flows import pending as pending_sign_in
from flows import recovery_display
from flows.signin import account_url, page_code, page_continue, page_hand_off, page_passkey, page_remember, relying_party
from mfa import totp, webauthn
from mfa.email_codes import email_code_send, mask_email
from mfa.forms import ChooseForm, CodeForm, PasskeyForm, RecoveryCodeForm, SavedCodesForm
from mfa.passkeys import PasskeyRefused, passkey_add, passkey_remove, webauthn_options
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

    def method(self) -> str:
        return self.pending.enroll or self.user.mfa_method

    def verify_passkey(self, form):
        """Judge the form's passkey answer (``flows.signin.page_passkey``); on refusal the
        reason goes on the form."""
        try:
            return page_passkey(self.request, self.pending, self.user, form.cleaned_data["credential"], name=form.cleaned_data.get("name", ""))
        except AuthFailure as exc:
            form.add_error(None, as_validation_error(exc))
            return None

    def passkey_context(self, form, *, register: bool) -> dict:
        """The options of a new ceremony (a fresh challenge, bound to this pending sign-in)."""
        options = webauthn_options(user=self.user, binding=self.pending.fingerprint, rp=relying_party(self.request, self.tenant), register=register)
        errors = [*form.non_field_errors(), *form.errors.get("credential", [])] if form is not None and form.is_bound else []
        # The prompt starts by itself on arrival, unless there is a "remember" box to tick first.
        autostart = self.request.method == "GET" and self.tenant.remember_device_days <= 0
        return {"options": options, "passkey_errors": errors, "autostart": autostart}


class ChooseView(RateLimitedPostMixin, PendingStepMixin, FormView):
    step = "choose"
    template_name = "mfa/choose.html"
    form_class = ChooseForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "tenant": self.tenant}

    def get_context_data(self, **kwargs):
        return super().get_context_data(method_removed=self.user.mfa_method != MfaMethod.NONE, **kwargs)

    def form_valid(self, form):
        self.pending.enroll = form.cleaned_data["method"]
        pending_sign_in.session_save(self.request, self.pending)
        return page_continue(self.request, self.tenant, self.pending, self.user)


class SetupView(RateLimitedPostMixin, PendingStepMixin, FormView):
    """Set-up of the method of a pending sign-in: the authenticator app (QR code and a first
    code) or a first passkey (registered in the browser); then the recovery codes, once."""

    step = "setup"
    template_name = "mfa/setup.html"

    def passkey(self) -> bool:
        return self.method() == MfaMethod.WEBAUTHN

    def get_template_names(self):
        return ["mfa/passkey_setup.html"] if self.passkey() else [self.template_name]

    def get_form_class(self):
        return PasskeyForm if self.passkey() else CodeForm

    def get_initial(self):
        return {"name": webauthn.default_name(self.request.META.get("HTTP_USER_AGENT", ""))} if self.passkey() else {}

    def get(self, request, *args, **kwargs):
        if not self.passkey():
            self.secret = totp_device_begin(user=self.user)  # the app row is made here, not while rendering
        return super().get(request, *args, **kwargs)

    def form_invalid(self, form):
        if not self.passkey():
            self.secret = totp_device_begin(user=self.user)  # the same secret, unless an admin reset it meanwhile
        return super().form_invalid(form)

    def get_context_data(self, **kwargs):
        if self.passkey():
            form = kwargs.setdefault("form", self.get_form())
            context = {**self.passkey_context(form, register=True), "autostart": False}  # a name first, then the prompt
            return super().get_context_data(name_field=form["name"], host=self.request.get_host(), **context, **kwargs)
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
        result = self.verify_passkey(form) if self.passkey() else self.verify_code(form)
        if result is None:
            return self.form_invalid(form)
        # page_hand_off resolves where to go next (a safe ?next= or the account page); the
        # recovery codes are shown first (from the session: a reload keeps them), with that
        # place as the way on.
        response = page_hand_off(self.request, self.tenant, self.user, amr=result.amr)
        recovery_display.codes_hold(self.request, codes=result.recovery_codes or [], continue_url=response.url, regenerated=False,
                                       passkey=self.passkey())
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

    def get_form(self, form_class=None):
        if self.state() == "recovery":
            return RecoveryCodeForm(**self.get_form_kwargs())
        # Passkey users without their passkey type a recovery code in ``code`` (letters: no
        # numeric keypad); app and email users get the keypad.
        return CodeForm(**self.get_form_kwargs(), allow_recovery=self.method() == MfaMethod.WEBAUTHN)

    def passkey_answer(self) -> bool:
        return self.method() == MfaMethod.WEBAUTHN and "credential" in self.request.POST

    def get(self, request, *args, **kwargs):
        if self.method() == MfaMethod.EMAIL and not self.pending.email_sent_at and not self.pending.email_tried and self.state() == "":
            self._send(announce=False)  # the page itself says where the code went
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if request.POST.get("action") == "resend" and self.method() == MfaMethod.EMAIL:
            self._send(announce=True)
            return redirect("mfa:verify", tenant_id=self.tenant.id)
        if self.passkey_answer():
            form = PasskeyForm(data=request.POST)
            if not form.is_valid():
                form = PasskeyForm(data={"credential": "{}"})
                form.is_valid()
            result = self.verify_passkey(form)
            if result is None:
                return self.render_to_response(self.get_context_data(form=self.get_form(), passkey_form=form))
            return self.signed_in(result)
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
        passkey = self.passkey_context(kwargs.pop("passkey_form", None), register=False) if self.method() == MfaMethod.WEBAUTHN else {}
        return super().get_context_data(
            method=self.method(), state=self.state(), has_recovery=has_recovery,
            masked_email=mask_email(self.user.email), email_sent=bool(self.pending.email_sent_at),
            remember_days=self.tenant.remember_device_days, **self.lockout_context(), **passkey, **kwargs,
        )

    def form_valid(self, form):
        result = self.verify_code(form)
        if result is None:
            return self.form_invalid(form)
        return self.signed_in(result)

    def signed_in(self, result):
        if result.used_recovery_code:
            left = recovery_codes_left(user=self.user)
            messages.warning(self.request, _("You signed in with a recovery code. It cannot be used again; %(left)d left.") % {"left": left})
        response = page_hand_off(self.request, self.tenant, self.user, amr=result.amr)
        if self.request.POST.get("remember") == "on":
            page_remember(self.request, response, self.user)
        return response


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
            return sign_in_redirect(self.tenant, next_url=account_url(self.tenant.id))
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
        return super().get_context_data(
            codes=self.held["codes"], regenerated=self.held["regenerated"], passkey=self.held.get("passkey", False), **kwargs
        )

    def form_invalid(self, form):
        # Post/Redirect/Get here too: no page in the history is a POST's answer.
        return redirect(f"{self.request.path}?unconfirmed=1")

    def form_valid(self, form):
        return redirect(recovery_display.codes_saved(self.request) or account_url(self.tenant.id))


# --- the account page's passkeys (signed in) ---------------------------------------------------

class SignedInMixin(TenantMixin):
    """Only for a person signed in to this tenant; others go to the sign-in page."""

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.tenant_id == self.tenant.id):
            return redirect("accounts:login", tenant_id=self.tenant.id)
        return super().dispatch(request, *args, **kwargs)


def session_binding(request) -> str:
    """What a passkey added on the account page is bound to: this signed-in session."""
    return salted_hmac("gatehouse.mfa.passkey-add", request.session.session_key or "", algorithm="sha256").hexdigest()


@method_decorator(never_cache, name="dispatch")
class PasskeyAddView(SignedInMixin, FormView):
    """Add another passkey (users whose method is passkeys, where the tenant allows them)."""

    template_name = "mfa/passkey_add.html"
    form_class = PasskeyForm

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and (user.mfa_method != MfaMethod.WEBAUTHN or not self.tenant.allows(MfaMethod.WEBAUTHN)):
            messages.error(request, _("Passkeys are not your second factor."))
            return redirect("accounts:account", tenant_id=self.tenant.id)
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        return {"name": webauthn.default_name(self.request.META.get("HTTP_USER_AGENT", ""))}

    def get_context_data(self, **kwargs):
        form = kwargs.setdefault("form", self.get_form())
        options = webauthn_options(
            user=self.request.user, binding=session_binding(self.request), rp=relying_party(self.request, self.tenant), register=True
        )
        errors = [*form.non_field_errors(), *form.errors.get("credential", [])] if form.is_bound else []
        return super().get_context_data(options=options, passkey_errors=errors, name_field=form["name"], **kwargs)

    def form_valid(self, form):
        try:
            passkey_add(
                user=self.request.user, credential=form.cleaned_data["credential"], name=form.cleaned_data["name"],
                binding=session_binding(self.request), rp=relying_party(self.request, self.tenant),
                ctx=RequestContext.from_request(self.request, channel="web"),
            )
        except webauthn.CredentialRefused:
            form.add_error(None, _("The passkey could not be added. Please try again."))
            return self.form_invalid(form)
        messages.success(self.request, _("Your new passkey is ready."))
        return redirect("accounts:account", tenant_id=self.tenant.id)


@method_decorator(never_cache, name="dispatch")
class PasskeyRemoveView(SignedInMixin, View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        try:
            passkey_remove(user=request.user, passkey_id=kwargs["passkey_id"], ctx=RequestContext.from_request(request, channel="web"))
        except PasskeyRefused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The passkey was removed."))
        return redirect("accounts:account", tenant_id=self.tenant.id)

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import MfaMethod


class CodeForm(forms.Form):
    """A six-digit code (app or email): a numeric keypad on phones. A recovery code typed here
    is still judged as one, but it has its own page state (``RecoveryCodeForm``)."""

    field_name = "code"
    code = forms.CharField(
        label=_("Code"),
        max_length=64,
        error_messages={"required": _("Enter the six-digit code.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "spellcheck": "false", "autocapitalize": "none"}
        ),
    )

    def __init__(self, *args, allow_recovery: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if allow_recovery:
            # Passkey users type a recovery code here (letters): no numeric keypad.
            self.fields["code"].widget.attrs["inputmode"] = "text"
            self.fields["code"].label = _("Recovery code")


class RecoveryCodeForm(forms.Form):
    """One of the recovery codes saved at set-up: letters and digits, so a full keyboard."""

    field_name = "recovery_code"
    recovery_code = forms.CharField(
        label=_("Recovery code"),
        max_length=64,
        help_text=_("One of the codes you saved when you set up your second factor, like xxxx-xxxx-xxxx. Each works once."),
        error_messages={"required": _("Enter one of your recovery codes.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "text", "autofocus": True, "spellcheck": "false", "autocapitalize": "none"}
        ),
    )


METHOD_CHOICES = [
    (MfaMethod.TOTP, _("An authenticator app (a code from your phone)")),
    (MfaMethod.EMAIL, _("A code sent to my email")),
    (MfaMethod.WEBAUTHN, _("A passkey or security key (fingerprint, face, PIN or a USB key)")),
]


class ChooseForm(forms.Form):
    method = forms.ChoiceField(
        label=_("Second factor"),
        choices=METHOD_CHOICES,
        error_messages={"required": _("Choose how you want to confirm your sign-ins.")},
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, tenant=None, **kwargs):
        """Only the methods ``tenant`` allows are offered (and accepted)."""
        super().__init__(*args, **kwargs)
        if tenant is not None:
            self.fields["method"].choices = [(value, label) for value, label in METHOD_CHOICES if tenant.allows(value)]


class PasskeyForm(forms.Form):
    """A passkey ceremony's answer (JSON, filled in by static/js/passkey.js) and, when one is
    registered, its name."""

    credential = forms.CharField(max_length=64 * 1024, widget=forms.HiddenInput)
    name = forms.CharField(
        label=_("Name of this passkey"),
        max_length=100,
        required=False,
        help_text=_("So you can tell your passkeys apart on your account page."),
    )

    def clean_credential(self):
        """The answer as a dict; anything else becomes an empty answer, refused (and counted) by
        the same road as a wrong one."""
        try:
            value = json.loads(self.cleaned_data["credential"])
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


class SavedCodesForm(forms.Form):
    saved = forms.BooleanField(
        label=_("I have saved these recovery codes"),
        error_messages={"required": _("Confirm that you have saved your recovery codes before you continue: they are not shown again.")},
    )

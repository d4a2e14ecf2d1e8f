import json

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import MfaMethod


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=64,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "spellcheck": "false", "autocapitalize": "none"}
        ),
    )

    def __init__(self, *args, allow_recovery: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if allow_recovery:
            # Recovery codes have letters: a numeric keypad would hide them on phones.
            self.fields["code"].widget.attrs["inputmode"] = "text"
            self.fields["code"].help_text = "Lost your device? Enter one of your recovery codes instead."


METHOD_CHOICES = [
    (MfaMethod.TOTP, _("An authenticator app (a code from your phone)")),
    (MfaMethod.EMAIL, _("A code sent to my email")),
    (MfaMethod.WEBAUTHN, _("A passkey or security key (fingerprint, face, PIN or a USB key)")),
]


class ChooseForm(forms.Form):
    method = forms.ChoiceField(label=_("Second factor"), choices=METHOD_CHOICES, widget=forms.RadioSelect)

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

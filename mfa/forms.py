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


class ChooseForm(forms.Form):
    method = forms.ChoiceField(
        label=_("Second factor"),
        choices=[(MfaMethod.TOTP, _("An authenticator app (a code from your phone)")), (MfaMethod.EMAIL, _("A code sent to my email"))],
        error_messages={"required": _("Choose how you want to confirm your sign-ins: an authenticator app or a code by email.")},
        widget=forms.RadioSelect,
    )


class SavedCodesForm(forms.Form):
    saved = forms.BooleanField(
        label=_("I have saved these recovery codes"),
        error_messages={"required": _("Confirm that you have saved your recovery codes before you continue: they are not shown again.")},
    )

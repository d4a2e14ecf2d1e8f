from django import forms

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


class ChooseForm(forms.Form):
    method = forms.ChoiceField(
        label="Second factor",
        choices=[(MfaMethod.TOTP, "An authenticator app (a code from your phone)"), (MfaMethod.EMAIL, "A code sent to my email")],
        widget=forms.RadioSelect,
    )

from django import forms
from django.core.exceptions import ValidationError

from accounts.errors import AuthFailure
from accounts.services import password_sign_in
from django.utils.translation import gettext_lazy as _


def as_validation_error(exc: AuthFailure) -> ValidationError:
    return ValidationError(exc.message, code=exc.code, params=exc.extra)


class SignInForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150, error_messages={"required": _("Enter your username.")}, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "none"}))
    password = forms.CharField(label=_("Password"), max_length=4096, strip=False, error_messages={"required": _("Enter your password.")}, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args, tenant, ctx, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant, self.ctx, self.user = tenant, ctx, None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.user = password_sign_in(tenant=self.tenant, username=data["username"], password=data["password"], ctx=self.ctx)
        except AuthFailure as exc:
            raise as_validation_error(exc) from None
        return data


class OperatorTenantForm(forms.Form):
    tenant = forms.SlugField(label=_("Tenant id"), max_length=63, widget=forms.TextInput(attrs={"autocomplete": "organization", "autofocus": True}))

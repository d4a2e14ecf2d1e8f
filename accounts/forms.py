from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.errors import AuthFailure
from accounts.services import password_sign_in


def as_validation_error(exc: AuthFailure) -> ValidationError:
    return ValidationError(exc.message, code=exc.code, params=exc.extra)


class SignInForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "none"}))
    password = forms.CharField(max_length=4096, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

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
    tenant = forms.SlugField(label="Tenant id", max_length=63, widget=forms.TextInput(attrs={"autocomplete": "organization", "autofocus": True}))


# --- password self-service --------------------------------------------------------------------

def _new_password_field(label):
    # Longer than the rule's 1,024 so that the rule, not the field, says "too long".
    return forms.CharField(label=label, max_length=4096, strip=False,
                           widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class ForgotForm(forms.Form):
    login = forms.CharField(
        label=_("Username or email address"), max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "none"}),
    )


class NewPasswordForm(forms.Form):
    """A new password, typed twice. The rules are the service's (``accounts.passwords``): its
    errors are put on ``new_password1`` by the view."""

    new_password1 = _new_password_field(_("New password"))
    new_password2 = _new_password_field(_("New password again"))

    def clean(self):
        data = super().clean()
        one, two = data.get("new_password1"), data.get("new_password2")
        if one is not None and two is not None and one != two:
            self.add_error("new_password2", ValidationError(_("The two passwords differ."), code="password_mismatch"))
        return data

    def add_service_error(self, exc: ValidationError) -> None:
        """The service's rule errors (under ``new_password``) beside the first field."""
        errors = exc.error_dict.get("new_password", []) if hasattr(exc, "error_dict") else exc.error_list
        for error in errors:
            self.add_error("new_password1", error)


class PasswordChangeForm(NewPasswordForm):
    current_password = forms.CharField(
        label=_("Current password"), max_length=4096, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    field_order = ["current_password", "new_password1", "new_password2"]

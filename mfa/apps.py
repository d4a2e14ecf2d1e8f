from django.utils.translation import gettext_lazy as _
from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "mfa"
    verbose_name = _("Second factors")

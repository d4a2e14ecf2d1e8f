from django.utils.translation import gettext_lazy as _
from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Tenants")

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OidcConfig(AppConfig):
    name = "oidc"
    verbose_name = _("OpenID Connect")

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from oidc.cors import cors_allowed_for_request

        check_request_enabled.connect(cors_allowed_for_request, dispatch_uid="gatehouse-oidc-cors")

from django.utils.translation import gettext_lazy as _
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from django.contrib.auth import user_logged_in
        from django.contrib.auth.models import update_last_login

        # ``accounts.services.login_succeeded`` stamps last_login once every factor is done;
        # Django's receiver would write it a second time on each page sign-in.
        user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")

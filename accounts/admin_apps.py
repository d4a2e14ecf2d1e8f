"""``django.contrib.admin`` with Gatehouse's site as its default site (Django's "Overriding the
default admin site"), so ``admin.site``, ``@admin.register`` and other apps' admin modules all
use ``accounts.admin_site.GatehouseAdminSite``.

Not in ``accounts.apps``: ``AdminConfig`` is marked ``default``, and an app's ``apps`` module
may hold only one default configuration (``AccountsConfig``).
"""
from django.contrib.admin.apps import AdminConfig


class GatehouseAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.GatehouseAdminSite"

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode


def _admin_login(request, extra_context=None):
    """The admin's own password form is never used: sign-in goes through Gatehouse, with MFA."""
    next_url = request.GET.get("next") or reverse("admin:index")
    return redirect(f"{reverse('operator-login')}?{urlencode({'next': next_url})}")


admin.site.login = _admin_login
admin.site.site_header = "Gatehouse administration"
admin.site.site_title = "Gatehouse"

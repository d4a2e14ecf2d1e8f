"""Clients in the admin site: a tenant admin sees and makes only their tenant's; the secret
of a new confidential client is shown once; DOT's token admins are not offered."""
from http import HTTPStatus

import pytest

from oidc.models import Application
from tests.oidc.helpers import make_client


@pytest.fixture
def admin_client_of(client, user_factory):
    admin = user_factory("root", is_admin=True)
    client.force_login(admin, backend="accounts.backends.TenantBackend")
    session = client.session
    session["gatehouse_amr"] = ["pwd"]
    session.save()
    return client


def test_tenant_admin_sees_only_their_clients(admin_client_of, tenant, tenant_factory):
    mine, _ = make_client(tenant, name="Mine")
    theirs, _ = make_client(tenant_factory("other"), name="Theirs")
    page = admin_client_of.get("/admin/oidc/application/")
    assert page.status_code == HTTPStatus.OK
    assert b"Mine" in page.content and b"Theirs" not in page.content
    assert admin_client_of.get(f"/admin/oidc/application/{theirs.pk}/change/").status_code == HTTPStatus.NOT_FOUND


def test_adding_a_confidential_client_shows_the_secret_once(admin_client_of, tenant):
    response = admin_client_of.post("/admin/oidc/application/add/", {
        "tenant": "acme", "name": "Photo Album", "client_type": "confidential",
        "redirect_uris": "https://photos.example/cb", "post_logout_redirect_uris": "", "allowed_origins": "",
    })
    assert response.status_code == HTTPStatus.OK, response.content[:2000]
    client = Application.objects.get(name="Photo Album")
    secret = response.context["secret"]
    assert secret.encode() in response.content and client.client_secret != secret
    page = admin_client_of.get(f"/admin/oidc/application/{client.pk}/change/")
    assert secret.encode() not in page.content


def test_token_admins_are_not_offered(admin_client_of):
    for path in ("oauth2_provider/accesstoken", "oauth2_provider/refreshtoken", "oauth2_provider/idtoken", "oidc/grant"):
        assert admin_client_of.get(f"/admin/{path}/").status_code == HTTPStatus.NOT_FOUND


def test_two_clients_added_at_once_each_show_their_own_secret(rf, tenant, user_factory):
    """One ModelAdmin serves every request of a process: a secret kept on it between the save
    and the answer could be shown to the admin of a request running at the same time."""
    from django.contrib import admin
    from django.contrib.auth.hashers import check_password

    model_admin = admin.site.get_model_admin(Application)
    request = rf.post("/admin/oidc/application/add/")
    request.user = user_factory("root", is_admin=True)
    request.session = {"gatehouse_amr": ["pwd"]}  # signed in through the pages, as in admin_client_of
    Form = model_admin.get_form(request)
    saved = []
    for name in ("First", "Second"):  # both saved before either answers
        form = Form({"tenant": "acme", "name": name, "client_type": "confidential", "redirect_uris": "https://a.example/cb",
                     "post_logout_redirect_uris": "", "allowed_origins": ""})
        assert form.is_valid(), form.errors
        obj = form.save(commit=False)
        model_admin.save_model(request, obj, form, change=False)
        saved.append(obj)
    shown = [model_admin.response_add(request, obj).context_data["secret"] for obj in saved]
    assert shown[0] != shown[1]
    for obj, secret in zip(saved, shown):
        assert check_password(secret, Application.objects.get(pk=obj.pk).client_secret)  # each its own, stored hashed

"""The admin's "Send password reset link": from a user's page and for many users, each asking first."""
import re
from http import HTTPStatus

from django.core import mail
from django_tasks_db.models import DBTaskResult

from accounts.models import AuditEvent, User
from accounts.selectors import reset_token_user
from tests.accounts.flows import page_messages
from tests.conftest import run_notices

Kind = AuditEvent.Kind


def mailed_tokens() -> list[str]:
    return [t for m in mail.outbox for t in re.findall(r"http://testserver/tenant/acme/password/reset/(\S+?)/", m.body)]


def test_send_a_reset_link_from_the_user_page(client_a, admin_a, user_factory, tenant):
    tina = user_factory("tina")
    url = f"/admin/accounts/user/{tina.pk}/send-password-reset/"
    assert url in client_a.get(f"/admin/accounts/user/{tina.pk}/change/").content.decode()
    response = client_a.get(url)
    assert response.status_code == HTTPStatus.OK and b"Yes, send the link" in response.content
    assert not DBTaskResult.objects.exists()  # asking changes nothing

    response = client_a.post(url, follow=True)
    assert any("Password reset link on its way to tina" in m for m in page_messages(response))
    event = AuditEvent.objects.get(kind=Kind.PASSWORD_RESET_SENT)
    assert (event.user, event.actor, event.channel) == (tina, admin_a, "admin")
    run_notices()
    (token,) = mailed_tokens()
    assert reset_token_user(tenant=tenant, token=token) == tina
    assert "administrator" in mail.outbox[-1].body


def test_send_reset_links_to_many_skips_who_cannot_get_one(client_a, admin_a, user_factory):
    tina, tom, ina = user_factory("tina"), user_factory("tom"), user_factory("ina")
    User.objects.filter(pk=ina.pk).update(is_active=False)
    data = {"action": "send_password_reset_selected", "_selected_action": [str(tina.pk), str(tom.pk), str(ina.pk)]}
    response = client_a.post("/admin/accounts/user/", data)
    assert response.status_code == HTTPStatus.OK
    assert [u.username for u in response.context["users"]] == ["ina", "tina", "tom"]
    assert not DBTaskResult.objects.exists()

    response = client_a.post("/admin/accounts/user/", {**data, "post": "yes"}, follow=True)
    messages = " ".join(page_messages(response))
    assert "Password reset link on its way to 2 users (tina, tom)" in messages and "Skipped 1 user (ina)" in messages
    run_notices()
    assert sorted(m.to[0] for m in mail.outbox) == ["tina@example.com", "tom@example.com"]


def test_another_tenants_user_is_a_404(client_b, admin_b, user_factory):
    tina = user_factory("tina")
    assert client_b.post(f"/admin/accounts/user/{tina.pk}/send-password-reset/").status_code == HTTPStatus.NOT_FOUND
    assert not DBTaskResult.objects.exists()


def test_an_admin_adds_a_user_without_a_password_then_sends_a_link(client_a, admin_a, tenant):
    data = {"username": "newbie", "email": "newbie@example.com", "mfa_method": "none", "password1": "", "password2": ""}
    response = client_a.post("/admin/accounts/user/add/", data)
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    newbie = User.objects.get(username="newbie")
    assert not newbie.has_usable_password()
    client_a.post(f"/admin/accounts/user/{newbie.pk}/send-password-reset/")
    run_notices()
    (token,) = mailed_tokens()
    assert reset_token_user(tenant=tenant, token=token) == newbie

"""The users admin: list, MFA status, Reset MFA and Unlock (single and bulk), create, password."""
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent, MfaMethod, RefreshTokenChain, User
from accounts.tokens import AMR_OTP, token_pair_issue
from mfa.models import EmailCode, RecoveryCode, TOTPDevice
from mfa.recovery_codes import recovery_codes_replace
from tenants.models import Tenant
from tenants.services import tenant_update_policy
from tests.accounts.flows import form_error_codes, manual_key, page_messages, password_step, setup_url
from accounts.services import user_create
from tests.conftest import FIXED_SECRET, PASSWORD, confirm_totp, run_notices

Kind = AuditEvent.Kind


@pytest.fixture
def tina(user_factory):
    """An app user with everything a reset must clear."""
    user = user_factory("tina", mfa_method=MfaMethod.TOTP)
    confirm_totp(user)
    recovery_codes_replace(user=user)
    EmailCode.objects.create(user=user, code_hash="x" * 64, created_at=timezone.now(), expires_at=timezone.now() + timedelta(minutes=5))
    return user


def lock(user) -> None:
    tenant_update_policy(tenant=user.tenant, password_max_attempts=2)
    from django.test import Client

    c = Client()
    for _ in range(2):
        password_step(c, user.tenant_id, user.username, "wrong-password")
    user.refresh_from_db()
    assert user.locked_until is not None and user.locked_until > timezone.now()


def listed(response) -> set[str]:
    assert response.status_code == HTTPStatus.OK
    return {u.username for u in response.context["cl"].result_list}


def test_list_search_and_filters(client_a, tina, user_factory):
    user_factory("emma", mfa_method=MfaMethod.EMAIL, email="emma@mail.test")
    user_factory("setting-up", mfa_method=MfaMethod.TOTP)  # method chosen, app not confirmed
    locked = user_factory("lou")
    lock(locked)
    assert listed(client_a.get("/admin/accounts/user/?q=emma@mail")) == {"emma"}
    assert listed(client_a.get("/admin/accounts/user/?q=TINA")) == {"tina"}
    assert listed(client_a.get("/admin/accounts/user/?mfa_method__exact=totp")) == {"boss", "tina", "setting-up"}
    assert listed(client_a.get("/admin/accounts/user/?enrolled=yes")) == {"boss", "tina", "emma"}
    assert listed(client_a.get("/admin/accounts/user/?enrolled=no")) == {"setting-up", "lou"}
    assert listed(client_a.get("/admin/accounts/user/?locked=yes")) == {"lou"}
    assert "lou" not in listed(client_a.get("/admin/accounts/user/?locked=no"))


def test_detail_shows_mfa_status_not_secrets(client_a, tina):
    User.objects.filter(pk=tina.pk).update(failed_code_count=2)
    response = client_a.get(f"/admin/accounts/user/{tina.pk}/change/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    for label in ("MFA enrolled", "Recovery codes left", "Locked until", "Failed code count", "Authenticator app"):
        assert label in page, label
    assert '<div class="readonly">10</div>' in page  # recovery codes left
    assert "Reset MFA" in page and "Unlock" in page
    assert FIXED_SECRET not in page and TOTPDevice.objects.get(user=tina).secret_encrypted not in page


def test_reset_mfa_from_the_user_page(client_a, admin_a, tina, client):
    url = f"/admin/accounts/user/{tina.pk}/reset-mfa/"
    response = client_a.get(url)
    assert response.status_code == HTTPStatus.OK
    assert b"Yes, reset MFA" in response.content and b"new QR code" in response.content
    assert TOTPDevice.objects.filter(user=tina).exists()  # asking changes nothing

    response = client_a.post(url, follow=True)
    assert response.redirect_chain[0] == (f"/admin/accounts/user/{tina.pk}/change/", HTTPStatus.FOUND)
    assert any("MFA reset for tina" in m for m in page_messages(response))
    assert not TOTPDevice.objects.filter(user=tina).exists()
    assert not RecoveryCode.objects.filter(user=tina).exists() and not EmailCode.objects.filter(user=tina).exists()
    event = AuditEvent.objects.get(kind=Kind.MFA_RESET)
    assert (event.user, event.actor, event.channel, event.tenant_id) == (tina, admin_a, "admin", "acme")
    run_notices()
    assert mail.outbox[-1].to == ["tina@example.com"] and "Acme Corp" in mail.outbox[-1].subject

    # At the next sign-in tina sets her app up again, with a new secret.
    response = password_step(client, "acme", "tina")
    assert response.url == setup_url("acme")
    new_key = manual_key(client.get(setup_url("acme")))
    assert new_key != FIXED_SECRET and len(new_key) == 32


def test_unlock_from_the_user_page(client_a, admin_a, user_factory, client):
    lou = user_factory("lou")
    lock(lou)
    response = password_step(client, "acme", "lou")
    assert form_error_codes(response) == ["locked_out"]
    url = f"/admin/accounts/user/{lou.pk}/unlock/"
    assert b"Yes, unlock" in client_a.get(url).content
    response = client_a.post(url, follow=True)
    assert any("Unlocked lou" in m for m in page_messages(response))
    lou.refresh_from_db()
    assert (lou.locked_until, lou.failed_password_count) == (None, 0)
    event = AuditEvent.objects.get(kind=Kind.UNLOCK)
    assert (event.user, event.actor, event.channel) == (lou, admin_a, "admin")
    response = password_step(client, "acme", "lou")
    assert response.status_code == HTTPStatus.FOUND
    assert response.url == "/tenant/acme/account/"


def test_bulk_reset_asks_then_acts(client_a, admin_a, tina, user_factory):
    tom = user_factory("tom", mfa_method=MfaMethod.TOTP)
    confirm_totp(tom)
    data = {"action": "reset_mfa_selected", "_selected_action": [str(tina.pk), str(tom.pk)]}
    response = client_a.post("/admin/accounts/user/", data)
    assert response.status_code == HTTPStatus.OK
    assert [u.username for u in response.context["users"]] == ["tina", "tom"]
    assert TOTPDevice.objects.filter(user__in=[tina, tom]).count() == 2

    response = client_a.post("/admin/accounts/user/", {**data, "post": "yes"}, follow=True)
    assert any("MFA reset for 2 users (tina, tom)" in m for m in page_messages(response))
    assert not TOTPDevice.objects.filter(user__in=[tina, tom]).exists()
    assert set(AuditEvent.objects.filter(kind=Kind.MFA_RESET, actor=admin_a).values_list("username", flat=True)) == {"tina", "tom"}


def test_bulk_unlock(client_a, admin_a, user_factory):
    lou, lea = user_factory("lou"), user_factory("lea")
    lock(lou)
    lock(lea)
    data = {"action": "unlock_selected", "_selected_action": [str(lou.pk), str(lea.pk)]}
    assert b"Yes, unlock" in client_a.post("/admin/accounts/user/", data).content
    response = client_a.post("/admin/accounts/user/", {**data, "post": "yes"}, follow=True)
    assert any("Unlocked 2 users" in m for m in page_messages(response))
    assert not User.objects.filter(pk__in=[lou.pk, lea.pk], locked_until__isnull=False).exists()
    assert AuditEvent.objects.filter(kind=Kind.UNLOCK, actor=admin_a).count() == 2


def add_user(client, **fields):
    data = {"username": "newbie", "email": "newbie@example.com", "mfa_method": "totp",
            "password1": "Quite-a-long-pass-77", "password2": "Quite-a-long-pass-77", **fields}
    return client.post("/admin/accounts/user/add/", data)


def add_form_codes(response, field):
    return [e.code for e in response.context["adminform"].form.errors.as_data().get(field, [])]


def test_create_user_with_a_password(client_a, client):
    page = client_a.get("/admin/accounts/user/add/").content.decode()
    assert 'name="password1"' in page and 'name="tenant"' not in page and 'name="is_superuser"' not in page
    response = add_user(client_a, username="NewBie", is_tenant_admin="on")
    assert response.status_code == HTTPStatus.FOUND
    newbie = User.objects.get(tenant_id="acme", username="newbie")
    assert newbie.check_password("Quite-a-long-pass-77")
    assert (newbie.mfa_method, newbie.is_tenant_admin, newbie.is_staff) == ("totp", True, True)
    assert response.url == f"/admin/accounts/user/{newbie.pk}/change/"
    assert password_step(client, "acme", "newbie", "Quite-a-long-pass-77").url == setup_url("acme")


def test_create_user_is_validated(client_a, tenant_b, user_factory):
    user_factory("newbie", tenant=tenant_b)  # the same name in another tenant is fine
    assert add_user(client_a).status_code == HTTPStatus.FOUND
    assert add_form_codes(add_user(client_a, username="NEWBIE"), "username") == ["username_taken"]
    assert add_form_codes(add_user(client_a, username="x2", password1="123", password2="123"), "password2") == [
        "password_too_short", "password_too_common"
    ]
    # The tenant's minimum length, not a global one: 13 characters where the tenant asks for 14.
    tenant_update_policy(tenant=Tenant.objects.get(pk="acme"), password_min_length=14)
    assert add_form_codes(add_user(client_a, username="x5", password1="Zq8-vLp2-wX4r", password2="Zq8-vLp2-wX4r"), "password2") == [
        "password_too_short"
    ]
    assert add_form_codes(add_user(client_a, username="x3", password2="different-pass-99"), "password2") == ["password_mismatch"]
    assert add_form_codes(add_user(client_a, username="x4", email="nope"), "email") == ["invalid"]
    assert add_form_codes(add_user(client_a, username="bad name!"), "username") == ["invalid"]
    assert not User.objects.filter(username__in=["x2", "x3", "x4", "x5"]).exists()


def test_operator_creates_a_user_in_any_tenant(client_ops, tenant_b):
    assert add_user(client_ops, tenant=tenant_b.pk).status_code == HTTPStatus.FOUND
    assert User.objects.get(username="newbie").tenant_id == "beta"


def test_change_user_fields(client_a, user_factory):
    from django.utils import timezone

    eve = user_factory("eve")
    User.objects.filter(pk=eve.pk).update(email_verified_at=timezone.now())
    data = {"username": "Eve2", "email": "eve2@example.com", "mfa_method": "email", "is_active": "on", "is_tenant_admin": "on"}
    assert client_a.post(f"/admin/accounts/user/{eve.pk}/change/", data).status_code == HTTPStatus.FOUND
    eve.refresh_from_db()
    assert (eve.username, eve.email, eve.mfa_method, eve.is_tenant_admin, eve.is_staff) == ("eve2", "eve2@example.com", "email", True, True)
    assert eve.email_verified_at is None  # a new address is not verified
    user_factory("taken")
    response = client_a.post(f"/admin/accounts/user/{eve.pk}/change/", {**data, "username": "Taken"})
    assert add_form_codes(response, "username") == ["username_taken"]
    data.pop("is_tenant_admin")
    client_a.post(f"/admin/accounts/user/{eve.pk}/change/", data)
    eve.refresh_from_db()
    assert (eve.is_tenant_admin, eve.is_staff) == (False, False)


def refresh_works(refresh: str, tenant_id: str = "acme") -> bool:
    answer = Client().post(f"/tenant/{tenant_id}/v2/auth/token/refresh", {"refreshToken": refresh}, content_type="application/json")
    return answer.status_code == HTTPStatus.OK


def test_set_password_revokes_refresh_tokens_and_is_audited(client_a, admin_a, tina):
    refresh = token_pair_issue(user=tina, amr=AMR_OTP)["refreshToken"]
    url = f"/admin/accounts/user/{tina.pk}/password/"
    page = client_a.get(url).content.decode()
    assert 'name="password1"' in page and 'name="usable_password"' not in page
    response = client_a.post(url, {"password1": "short", "password2": "short"})
    assert response.status_code == HTTPStatus.OK
    assert [e.code for e in response.context["form"].errors.as_data()["password2"]] == ["password_too_short"]
    response = client_a.post(url, {"password1": "Brand-new-pass-2031", "password2": "Brand-new-pass-2031"}, follow=True)
    assert any("Password changed for tina" in m for m in page_messages(response))
    tina.refresh_from_db()
    assert tina.check_password("Brand-new-pass-2031")
    assert RefreshTokenChain.objects.filter(user=tina, revoked_at__isnull=False).count() == 1
    assert not refresh_works(refresh)
    event = AuditEvent.objects.get(kind=Kind.PASSWORD_CHANGED)
    assert (event.user, event.actor, event.channel) == (tina, admin_a, "admin")


def test_own_password_change_keeps_the_admin_signed_in(client_a, admin_a):
    url = f"/admin/accounts/user/{admin_a.pk}/password/"
    client_a.post(url, {"password1": "Brand-new-pass-2031", "password2": "Brand-new-pass-2031"})
    assert client_a.get("/admin/").status_code == HTTPStatus.OK


def test_delete_user_revokes_tokens(client_a, tina):
    refresh = token_pair_issue(user=tina, amr=AMR_OTP)["refreshToken"]
    assert client_a.get(f"/admin/accounts/user/{tina.pk}/delete/").status_code == HTTPStatus.OK
    response = client_a.post(f"/admin/accounts/user/{tina.pk}/delete/", {"post": "yes"})
    assert response.status_code == HTTPStatus.FOUND
    assert not User.objects.filter(pk=tina.pk).exists()
    assert not RefreshTokenChain.objects.exists() and not refresh_works(refresh)


def test_locked_filter_ignores_expired_locks(client_a, user_factory):
    old = user_factory("old")
    User.objects.filter(pk=old.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert "old" not in listed(client_a.get("/admin/accounts/user/?locked=yes"))


def test_confirmation_pages_need_change_permission(user_factory, tina):
    from tests.admin.conftest import signed_in_client

    # A staff flag without the tenant-admin role opens nothing.
    odd = user_factory("odd")
    User.objects.filter(pk=odd.pk).update(is_staff=True)
    odd.refresh_from_db()
    client = signed_in_client(odd, amr=["pwd"])
    response = client.post(f"/admin/accounts/user/{tina.pk}/reset-mfa/")
    assert response.status_code == HTTPStatus.FOUND
    assert TOTPDevice.objects.filter(user=tina).exists()


def test_losing_a_race_for_the_username_is_a_message_not_a_500(client_a, tenant, monkeypatch):
    """The add form checked the name, then a parallel request took it before the save."""
    from accounts.admin import UserAddForm

    real_clean = UserAddForm.clean

    def clean_then_lose_the_race(self):
        data = real_clean(self)
        user_create(tenant=tenant, username=data["username"], email="other@example.com", password=PASSWORD)
        return data

    monkeypatch.setattr(UserAddForm, "clean", clean_then_lose_the_race)
    response = client_a.post(
        "/admin/accounts/user/add/",
        {"username": "racer", "email": "racer@example.com", "password1": PASSWORD, "password2": PASSWORD, "mfa_method": "none"},
    )
    assert response.status_code == HTTPStatus.FOUND
    # (The competitor's row shares this test's transaction, so it is rolled back with the add.)
    assert not User.objects.filter(tenant=tenant, email="racer@example.com").exists()
    assert "already taken" in " ".join(m.message for m in client_a.get("/admin/").context["messages"])


# --- the users list and "Recent actions" (issue 21) ------------------------------------------

def test_users_list_columns_link_to_audit_events_and_show_times_to_the_second(client_a, admin_a, user_factory):
    lou = user_factory("lou")
    lock(lou)
    User.objects.filter(pk=lou.pk).update(last_login=timezone.now().replace(microsecond=0))
    lou.refresh_from_db()
    response = client_a.get("/admin/accounts/user/")
    html = response.content.decode()
    assert response.context["cl"].list_display[1:] == ["username", "email", "second_factor", "status", "last_sign_in", "events_link"]
    events_url = f"/admin/accounts/auditevent/?user__id__exact={lou.pk}"
    assert f'href="{events_url}"' in html
    assert f"{timezone.localtime(lou.last_login):%Y-%m-%d %H:%M:%S} UTC" in html
    assert f"Locked until {timezone.localtime(lou.locked_until):%Y-%m-%d %H:%M:%S} UTC" in html
    # The link lists that user's events only (and stays within the tenant).
    AuditEvent.objects.create(tenant_id="acme", user=lou, username="lou", kind=Kind.LOCKOUT, channel="web")
    AuditEvent.objects.create(tenant_id="acme", user=admin_a, username=admin_a.username, kind=Kind.SIGN_IN_SUCCESS, channel="web")
    listed = client_a.get(events_url)
    assert listed.status_code == HTTPStatus.OK
    assert {e.username for e in listed.context["cl"].result_list} == {"lou"}


def test_reset_and_unlock_are_in_recent_actions(client_a, admin_a, tina, user_factory):
    from django.contrib.admin.models import LogEntry

    lou = user_factory("lou")
    lock(lou)
    client_a.post(f"/admin/accounts/user/{lou.pk}/unlock/")
    client_a.post("/admin/accounts/user/", {"action": "reset_mfa_selected", "_selected_action": [str(tina.pk)], "post": "yes"})
    entries = {(e.object_id, e.get_change_message()) for e in LogEntry.objects.filter(user=admin_a)}
    assert entries == {(str(lou.pk), "Unlocked."), (str(tina.pk), "Reset MFA.")}
    index = client_a.get("/admin/").content.decode()
    assert "lou" in index and "tina" in index  # the admin index's "Recent actions"

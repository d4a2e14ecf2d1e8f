"""Passkeys (WebAuthn) through the API and the pages, driven by a software authenticator
(tests/mfa/soft_authenticator.py); the real browser with Chromium's virtual authenticator is
tests/e2e/test_passkeys.py."""
import json
import re
from datetime import timedelta
from html import unescape
from http import HTTPStatus

import pytest

from accounts.models import AuditEvent, MfaMethod, User
from mfa.models import RecoveryCode, WebAuthnChallenge, WebAuthnCredential
from mfa.setup import mfa_reset
from mfa.webauthn import default_name, sign_count_ok
from tests.accounts.flows import account_url, password_step, setup_url, verify_url
from tests.api.helpers import assert_error, call, v2
from tests.conftest import PASSWORD
from tests.mfa.soft_authenticator import SoftAuthenticator

Kind = AuditEvent.Kind


def kinds(user) -> list[str]:
    return list(AuditEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True))


def login(client, user, **extra):
    response = call(client, "POST", v2(user.tenant_id, "auth/login"), {"username": user.username, "password": PASSWORD, **extra})
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def options(client, tenant_id, mfa_token):
    response = call(client, "POST", v2(tenant_id, "auth/mfa/webauthn/options"), {"mfaToken": mfa_token})
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def verify(client, tenant_id, mfa_token, credential, **extra):
    return call(client, "POST", v2(tenant_id, "auth/mfa/verify"), {"mfaToken": mfa_token, "credential": credential, **extra})


def register(client, user, authenticator=None):
    """A first passkey through the API; returns the authenticator and the verify answer."""
    authenticator = authenticator or SoftAuthenticator()
    challenge = login(client, user)
    assert challenge["mfaMethod"] == "webauthn" and challenge["enrollmentRequired"] is True
    creation = options(client, user.tenant_id, challenge["mfaToken"])
    assert creation["publicKey"]["rp"]["id"] == "testserver"
    assert creation["publicKey"]["authenticatorSelection"]["userVerification"] == "preferred"
    assert creation["publicKey"]["authenticatorSelection"]["residentKey"] == "preferred"
    assert creation["publicKey"]["attestation"] == "none"
    response = verify(client, user.tenant_id, challenge["mfaToken"], authenticator.create(creation))
    assert response.status_code == HTTPStatus.OK, response.content
    return authenticator, response.json()


def assertion_start(client, user):
    challenge = login(client, user)
    assert challenge["mfaMethod"] == "webauthn" and challenge["enrollmentRequired"] is False
    return challenge["mfaToken"], options(client, user.tenant_id, challenge["mfaToken"])


@pytest.fixture
def passkey_user(user_factory):
    return user_factory("pat", mfa_method=MfaMethod.WEBAUTHN)


def test_api_registration_then_sign_in(client, passkey_user):
    authenticator, body = register(client, passkey_user)
    assert len(body["recoveryCodes"]) == 10 and body["accessToken"]
    passkey = WebAuthnCredential.objects.get(user=passkey_user)
    assert passkey.name == "Passkey"  # the test client sends no User-Agent
    assert Kind.PASSKEY_ADDED in kinds(passkey_user) and Kind.FACTOR_SETUP in kinds(passkey_user)

    token, request_options = assertion_start(client, passkey_user)
    assert request_options["publicKey"]["rpId"] == "testserver"
    assert [c["id"] for c in request_options["publicKey"]["allowCredentials"]] == [passkey.credential_id]
    response = verify(client, passkey_user.tenant_id, token, authenticator.get(request_options))
    assert response.status_code == HTTPStatus.OK, response.content
    assert "recoveryCodes" not in response.json()
    passkey.refresh_from_db()
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    assert kinds(passkey_user)[-2:] == [Kind.PASSKEY_USED, Kind.SIGN_IN_SUCCESS]


def test_cloned_authenticator_is_refused_and_audited(client, passkey_user):
    authenticator, _ = register(client, passkey_user)
    clone = authenticator.clone()
    token, request_options = assertion_start(client, passkey_user)
    assert verify(client, passkey_user.tenant_id, token, authenticator.get(request_options)).status_code == HTTPStatus.OK
    # The clone's counter is where the original's was: it goes back to 1, not past it.
    token, request_options = assertion_start(client, passkey_user)
    body = assert_error(verify(client, passkey_user.tenant_id, token, clone.get(request_options)), HTTPStatus.UNAUTHORIZED, "invalid_code")
    assert body["attemptsRemaining"] == 4
    assert Kind.PASSKEY_CLONE_SUSPECTED in kinds(passkey_user)
    assert WebAuthnCredential.objects.get(user=passkey_user).sign_count == 1
    assert User.objects.get(pk=passkey_user.pk).failed_code_count == 1


def test_sign_count_rule():
    assert sign_count_ok(stored=0, presented=0) and sign_count_ok(stored=4, presented=5)
    assert not sign_count_ok(stored=5, presented=5) and not sign_count_ok(stored=5, presented=0)


def test_a_challenge_answers_once(client, passkey_user):
    authenticator, _ = register(client, passkey_user)
    token, request_options = assertion_start(client, passkey_user)
    bad = authenticator.get(request_options)
    bad["response"]["signature"] = bad["response"]["signature"][:-4] + "AAAA"
    assert_error(verify(client, passkey_user.tenant_id, token, bad), HTTPStatus.UNAUTHORIZED, "invalid_code")
    # The refused answer spent its challenge: a good answer to the same challenge is refused too.
    good = authenticator.get(request_options)
    assert_error(verify(client, passkey_user.tenant_id, token, good), HTTPStatus.UNAUTHORIZED, "invalid_code")
    assert User.objects.get(pk=passkey_user.pk).failed_code_count == 2


def test_a_used_challenge_is_refused_in_the_next_sign_in(client, passkey_user):
    authenticator, _ = register(client, passkey_user)
    token, request_options = assertion_start(client, passkey_user)
    answer = authenticator.get(request_options)
    assert verify(client, passkey_user.tenant_id, token, answer).status_code == HTTPStatus.OK
    token2, _options = assertion_start(client, passkey_user)
    replay = authenticator.get(request_options)  # the old challenge again (a new count: only the challenge is stale)
    assert_error(verify(client, passkey_user.tenant_id, token2, replay), HTTPStatus.UNAUTHORIZED, "invalid_code")


def test_an_expired_challenge_is_refused(client, passkey_user, time_machine):
    authenticator, _ = register(client, passkey_user)
    token, request_options = assertion_start(client, passkey_user)
    challenge = WebAuthnChallenge.objects.get(user=passkey_user)
    time_machine.move_to(challenge.expires_at + timedelta(seconds=1))
    assert_error(verify(client, passkey_user.tenant_id, token, authenticator.get(request_options)), HTTPStatus.UNAUTHORIZED, "invalid_code")


def test_assertion_for_another_tenants_user_is_refused(client, tenant_factory, user_factory, passkey_user):
    mine, _ = register(client, passkey_user)
    other_tenant = tenant_factory("globex", "Globex")
    other = user_factory("pat", tenant=other_tenant, mfa_method=MfaMethod.WEBAUTHN)
    register(client, other)
    # My authenticator answers the other user's challenge: its credential is not theirs.
    token, request_options = assertion_start(client, other)
    assert_error(verify(client, other.tenant_id, token, mine.get(request_options)), HTTPStatus.UNAUTHORIZED, "invalid_code")
    # My own mfaToken is not valid on the other tenant's URLs.
    my_token, my_options = assertion_start(client, passkey_user)
    assert_error(verify(client, other.tenant_id, my_token, mine.get(my_options)), HTTPStatus.UNAUTHORIZED, "invalid_mfa_token")
    assert User.objects.get(pk=other.pk).failed_code_count == 1


@pytest.mark.parametrize("where", ["origin", "rp_id"])
def test_wrong_origin_or_rp_id_is_refused(client, passkey_user, where):
    authenticator, _ = register(client, passkey_user)
    token, request_options = assertion_start(client, passkey_user)
    phished = authenticator.clone()
    if where == "origin":
        phished.origin = "http://testserver.evil.example"
    else:
        phished.rp_id = "evil.example"
    assert_error(verify(client, passkey_user.tenant_id, token, phished.get(request_options)), HTTPStatus.UNAUTHORIZED, "invalid_code")


@pytest.mark.parametrize(
    "credential",
    [{}, {"id": 1}, {"id": "x", "rawId": "y", "type": "public-key", "response": "z"},
     {"id": "AA", "rawId": "AA", "type": "public-key", "response": {"clientDataJSON": "!!", "authenticatorData": "", "signature": ""}},
     {"response": {"authenticatorData": None}}],
)
def test_malformed_credentials_count_as_wrong_codes(client, passkey_user, credential):
    register(client, passkey_user)
    token, _options = assertion_start(client, passkey_user)
    body = assert_error(verify(client, passkey_user.tenant_id, token, credential), HTTPStatus.UNAUTHORIZED, "invalid_code")
    assert body["attemptsRemaining"] == 4


def test_credential_must_be_an_object_and_alone(client, passkey_user):
    token = login(client, passkey_user)["mfaToken"]
    assert_error(verify(client, passkey_user.tenant_id, token, "not-an-object"), HTTPStatus.BAD_REQUEST, "invalid_request")
    response = call(client, "POST", v2(passkey_user.tenant_id, "auth/mfa/verify"), {"mfaToken": token, "code": "123456", "credential": {}})
    assert_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")


def test_options_for_a_user_of_another_method_is_wrong_method(client, totp_user):
    token = login(client, totp_user)["mfaToken"]
    response = call(client, "POST", v2(totp_user.tenant_id, "auth/mfa/webauthn/options"), {"mfaToken": token})
    assert_error(response, HTTPStatus.CONFLICT, "wrong_mfa_method")


def test_recovery_code_signs_a_passkey_user_in(client, passkey_user):
    _authenticator, body = register(client, passkey_user)
    token = login(client, passkey_user)["mfaToken"]
    response = call(client, "POST", v2(passkey_user.tenant_id, "auth/mfa/verify"), {"mfaToken": token, "code": body["recoveryCodes"][0]})
    assert response.status_code == HTTPStatus.OK, response.content


def test_reset_removes_passkeys_and_set_up_starts_again(client, passkey_user):
    register(client, passkey_user)
    mfa_reset(user=passkey_user)
    assert not WebAuthnCredential.objects.filter(user=passkey_user).exists()
    assert not RecoveryCode.objects.filter(user=passkey_user).exists()
    register(client, passkey_user)  # enrollmentRequired again, creation options again
    assert WebAuthnCredential.objects.filter(user=passkey_user).count() == 1


def test_users_api_shows_passkey_count(client, passkey_user, user_factory):
    from tests.api.helpers import access_token

    register(client, passkey_user)
    admin = user_factory("boss", is_admin=True)
    response = call(client, "GET", v2(passkey_user.tenant_id, f"Users/{passkey_user.pk}"), token=access_token(admin))
    assert response.json()["passkeyCount"] == 1 and response.json()["mfaEnrolled"] is True
    listed = call(client, "GET", v2(passkey_user.tenant_id, "Users?username=pat"), token=access_token(admin)).json()["results"]
    assert listed[0]["passkeyCount"] == 1


def test_default_names():
    mac_chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
    assert default_name(mac_chrome) == "Passkey on Chrome, macOS"
    assert default_name("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0") == "Passkey on Firefox, Linux"
    assert default_name("") == "Passkey"


# --- the pages -------------------------------------------------------------------------------

def page_options(response) -> dict:
    match = re.search(r'<script id="passkey-options" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, response.content.decode()[:2000]
    return json.loads(unescape(match.group(1)))


def test_pages_set_up_and_use_a_passkey(client, passkey_user):
    authenticator = SoftAuthenticator()
    assert password_step(client, "acme", "pat").url == setup_url("acme")
    page = client.get(setup_url("acme"), HTTP_USER_AGENT="Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/130.0 Safari/537.36")
    assert b"Passkey on Chrome, macOS" in page.content and b"js/passkey.js" in page.content
    assert b"A passkey needs JavaScript" in page.content
    response = client.post(setup_url("acme"), {"credential": json.dumps(authenticator.create(page_options(page))), "name": "My laptop"},
                           follow=True)  # the recovery codes after a redirect (issue 21)
    assert response.status_code == HTTPStatus.OK and b"Your passkey is set up." in response.content
    assert WebAuthnCredential.objects.get(user=passkey_user).name == "My laptop"
    client.post("/tenant/acme/logout/")

    assert password_step(client, "acme", "pat").url == verify_url("acme")
    page = client.get(verify_url("acme"))
    assert b"recovery code" in page.content
    response = client.post(verify_url("acme"), {"credential": json.dumps(authenticator.get(page_options(page)))})
    assert response.status_code == HTTPStatus.FOUND and response.url == account_url("acme")
    account = client.get(account_url("acme"))
    assert b"My laptop" in account.content


def test_page_refuses_a_bad_answer_and_counts_it(client, passkey_user):
    authenticator, _ = register(client, passkey_user)
    password_step(client, "acme", "pat")
    page = client.get(verify_url("acme"))
    response = client.post(verify_url("acme"), {"credential": "not json"})
    assert response.status_code == HTTPStatus.OK and b"attempts left" in response.content
    assert User.objects.get(pk=passkey_user.pk).failed_code_count == 1
    # The page made a new challenge; the old options' challenge still answers once.
    response = client.post(verify_url("acme"), {"credential": json.dumps(authenticator.get(page_options(page)))})
    assert response.status_code == HTTPStatus.FOUND


def test_account_page_adds_and_removes_passkeys_never_the_last(client, passkey_user):
    first = SoftAuthenticator()
    password_step(client, "acme", "pat")
    page = client.get(setup_url("acme"))
    client.post(setup_url("acme"), {"credential": json.dumps(first.create(page_options(page))), "name": "Laptop"})
    only = WebAuthnCredential.objects.get(user=passkey_user)
    response = client.post(f"/tenant/acme/account/passkeys/{only.pk}/remove/")
    assert response.status_code == HTTPStatus.FOUND and WebAuthnCredential.objects.filter(user=passkey_user).count() == 1

    second = SoftAuthenticator()
    page = client.get("/tenant/acme/account/passkeys/add/")
    options_ = page_options(page)
    assert [c["id"] for c in options_["publicKey"]["excludeCredentials"]] == [only.credential_id]
    response = client.post("/tenant/acme/account/passkeys/add/", {"credential": json.dumps(second.create(options_)), "name": "Phone"})
    assert response.status_code == HTTPStatus.FOUND
    assert list(WebAuthnCredential.objects.filter(user=passkey_user).values_list("name", flat=True)) == ["Laptop", "Phone"]
    response = client.post(f"/tenant/acme/account/passkeys/{only.pk}/remove/")
    assert list(WebAuthnCredential.objects.filter(user=passkey_user).values_list("name", flat=True)) == ["Phone"]
    assert Kind.PASSKEY_REMOVED in kinds(passkey_user)
    account = client.get(account_url("acme"))
    assert b"Phone" in account.content and b"Laptop" not in account.content


def test_account_add_refuses_a_replayed_answer(client, passkey_user):
    authenticator, _ = register(client, passkey_user)
    password_step(client, "acme", "pat")
    page = client.get(verify_url("acme"))
    client.post(verify_url("acme"), {"credential": json.dumps(authenticator.get(page_options(page)))})
    page = client.get("/tenant/acme/account/passkeys/add/")
    answer = json.dumps(SoftAuthenticator().create(page_options(page)))
    assert client.post("/tenant/acme/account/passkeys/add/", {"credential": answer, "name": "A"}).status_code == HTTPStatus.FOUND
    again = client.post("/tenant/acme/account/passkeys/add/", {"credential": answer, "name": "B"})
    assert again.status_code == HTTPStatus.OK and b"could not be added" in again.content
    assert WebAuthnCredential.objects.filter(user=passkey_user).count() == 2


def test_other_users_passkey_cannot_be_removed(client, passkey_user, user_factory):
    register(client, passkey_user)
    theirs = WebAuthnCredential.objects.get(user=passkey_user)
    user_factory("ivan")
    password_step(client, "acme", "ivan")
    client.post(f"/tenant/acme/account/passkeys/{theirs.pk}/remove/")
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()


def test_a_user_who_must_choose_can_choose_passkeys_through_the_api(client, tenant, user_factory):
    from tenants.services import tenant_update_policy

    tenant_update_policy(tenant=tenant, mfa_required=True)
    newbie = user_factory("newbie")
    challenge = login(client, newbie)
    assert challenge["enrollmentRequired"] is True and challenge["mfaMethod"] == "totp"
    creation = options(client, "acme", challenge["mfaToken"])
    assert "rp" in creation["publicKey"]
    response = verify(client, "acme", challenge["mfaToken"], SoftAuthenticator().create(creation))
    assert response.status_code == HTTPStatus.OK and len(response.json()["recoveryCodes"]) == 10
    assert User.objects.get(pk=newbie.pk).mfa_method == MfaMethod.WEBAUTHN


def test_options_refused_when_the_tenant_does_not_allow_passkeys(client, tenant, passkey_user):
    from tenants.services import tenant_update_policy

    tenant_update_policy(tenant=tenant, allowed_methods=["totp"])
    challenge = login(client, passkey_user)
    assert challenge["mfaMethod"] == "totp" and challenge["enrollmentRequired"] is True
    response = call(client, "POST", v2("acme", "auth/mfa/webauthn/options"), {"mfaToken": challenge["mfaToken"]})
    assert_error(response, HTTPStatus.CONFLICT, "wrong_mfa_method")


def test_account_add_spends_the_challenge_of_a_refused_answer(client, passkey_user):
    authenticator, _ = register(client, passkey_user)
    password_step(client, "acme", "pat")
    page = client.get(verify_url("acme"))
    client.post(verify_url("acme"), {"credential": json.dumps(authenticator.get(page_options(page)))})
    page = client.get("/tenant/acme/account/passkeys/add/")
    new_key = SoftAuthenticator()
    bad = new_key.create(page_options(page))
    bad["response"]["clientDataJSON"] = SoftAuthenticator(origin="http://evil.example").create(page_options(page))["response"]["clientDataJSON"]
    assert client.post("/tenant/acme/account/passkeys/add/", {"credential": json.dumps(bad)}).status_code == HTTPStatus.OK
    good = new_key.create(page_options(page))
    assert client.post("/tenant/acme/account/passkeys/add/", {"credential": json.dumps(good)}).status_code == HTTPStatus.OK
    assert WebAuthnCredential.objects.filter(user=passkey_user).count() == 1


def test_passkey_steps_are_counted_in_the_metrics(client, passkey_user):
    from prometheus_client import REGISTRY

    def count(result):
        return REGISTRY.get_sample_value("gatehouse_sign_in_steps_total", {"method": "webauthn", "result": result}) or 0

    authenticator, _ = register(client, passkey_user)
    ok, failed = count("success"), count("failure")
    token, request_options = assertion_start(client, passkey_user)
    assert verify(client, "acme", token, authenticator.get(request_options)).status_code == HTTPStatus.OK
    token, _options = assertion_start(client, passkey_user)
    verify(client, "acme", token, {})
    assert (count("success"), count("failure")) == (ok + 1, failed + 1)

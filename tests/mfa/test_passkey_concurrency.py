"""Passkeys under parallel requests on PostgreSQL: one answer (one challenge) signs in once,
however many requests present it at the same moment; the rest count as wrong codes."""
import pytest

from accounts.models import MfaMethod, User
from flows import pending as pending_sign_in
from mfa.passkeys import webauthn_options
from mfa.verify import code_verify
from mfa.webauthn import RelyingParty
from tests.conftest import in_parallel
from tests.mfa.soft_authenticator import SoftAuthenticator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
THREADS = 8
RP = RelyingParty.for_host(scheme="http", host="testserver", name="Race")


def test_one_passkey_answer_signs_in_once(postgres, tenant_factory, user_factory):
    tenant = tenant_factory("race", mfa_max_attempts=100)
    user = user_factory("runner", tenant=tenant, mfa_method=MfaMethod.WEBAUTHN)
    key = SoftAuthenticator()
    fingerprint = user.sign_in_fingerprint()
    creation = webauthn_options(user=user, binding=fingerprint, rp=RP, register=True)
    code_verify(user=user, code="", credential=key.create(creation), rp=RP, fingerprint=fingerprint)
    user.refresh_from_db()
    pending = pending_sign_in.Pending(str(user.pk), tenant.id, 0, user.sign_in_fingerprint())
    request = webauthn_options(user=user, binding=pending.fingerprint, rp=RP, register=False)
    answer = key.get(request)

    def attempt():
        fresh = User.objects.select_related("tenant").get(pk=user.pk)
        code_verify(user=fresh, code="", credential=answer, rp=RP, fingerprint=pending.fingerprint)

    outcomes = in_parallel(THREADS, attempt)
    assert outcomes["ok"] == 1, outcomes
    assert sum(outcomes.values()) == THREADS and not any(k.startswith("crash") for k in outcomes), outcomes

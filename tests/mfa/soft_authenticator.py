"""A software WebAuthn authenticator for tests without a browser: it answers creation and
request options (the JSON ``{"publicKey": ...}`` Gatehouse hands out) the way a browser with
a platform authenticator would, signing with its own P-256 key. It can be cloned (a copy
with the same key and counter), and its origin can be set wrong, to test refusals."""
import hashlib
import json
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData

FLAGS = AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.UV


@dataclass
class SoftAuthenticator:
    origin: str = "http://testserver"
    counter: int = 0
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    rp_id: str | None = None

    def clone(self) -> "SoftAuthenticator":
        return SoftAuthenticator(origin=self.origin, counter=self.counter, key=self.key, credential_id=self.credential_id, rp_id=self.rp_id)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def create(self, options: dict) -> dict:
        public_key = options["publicKey"]
        rp_id = self.rp_id or public_key["rp"]["id"]
        self.rp_id = rp_id
        cose = ES256.from_cryptography_key(self.key.public_key())
        attested = AttestedCredentialData.create(b"\0" * 16, self.credential_id, cose)
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(), FLAGS | AuthenticatorData.FLAG.AT, self.counter, attested
        )
        attestation = AttestationObject.create("none", auth_data, {})
        client_data = self._client_data("webauthn.create", public_key["challenge"])
        return {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {"clientDataJSON": websafe_encode(client_data), "attestationObject": websafe_encode(bytes(attestation))},
            "clientExtensionResults": {"credProps": {"rk": True}},
        }

    def get(self, options: dict, *, bump: bool = True) -> dict:
        public_key = options["publicKey"]
        rp_id = self.rp_id or public_key["rpId"]
        if bump:
            self.counter += 1
        auth_data = AuthenticatorData.create(hashlib.sha256(rp_id.encode()).digest(), FLAGS, self.counter)
        client_data = self._client_data("webauthn.get", public_key["challenge"])
        signature = self.key.sign(bytes(auth_data) + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "authenticatorData": websafe_encode(bytes(auth_data)),
                "signature": websafe_encode(signature),
            },
            "clientExtensionResults": {},
        }


def options_challenge(options: dict) -> bytes:
    return websafe_decode(options["publicKey"]["challenge"])


# --- driving the pages with Django's test client ---------------------------------------------

def page_options(response) -> dict:
    import re
    from html import unescape

    match = re.search(r'<script id="passkey-options" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, response.content.decode()[:2000]
    return json.loads(unescape(match.group(1)))


def page_register(client, tenant_id: str, username: str, authenticator: "SoftAuthenticator", *, name: str = "Laptop"):
    """Password, then a first passkey on the set-up page; the recovery-codes page answers."""
    from tests.accounts.flows import password_step, setup_url

    password_step(client, tenant_id, username)
    page = client.get(setup_url(tenant_id))
    return client.post(setup_url(tenant_id), {"credential": json.dumps(authenticator.create(page_options(page))), "name": name})


def page_sign_in(client, tenant_id: str, username: str, authenticator: "SoftAuthenticator"):
    """Password, then the passkey on the code page."""
    from tests.accounts.flows import password_step, verify_url

    password_step(client, tenant_id, username)
    page = client.get(verify_url(tenant_id))
    return client.post(verify_url(tenant_id), {"credential": json.dumps(authenticator.get(page_options(page)))})


def page_add(client, tenant_id: str, authenticator: "SoftAuthenticator", *, name: str = "Phone"):
    page = client.get(f"/tenant/{tenant_id}/account/passkeys/add/")
    return client.post(f"/tenant/{tenant_id}/account/passkeys/add/", {"credential": json.dumps(authenticator.create(page_options(page))), "name": name})

"""Passkeys and security keys (WebAuthn Level 2), the pure part: no ORM, no request.

Built on Yubico's ``fido2`` (the library django-allauth's ``mfa.webauthn`` uses). The relying
party is the host a page or API call came in on (``RelyingParty.for_host``); the origin
must be that scheme and host exactly. Attestation is ``none`` (we trust the key, not its
maker), user verification and resident keys are *preferred*: a passkey shows its account and
asks for a PIN or fingerprint where it can, and a plain security key still works.

The ceremonies take a challenge made here and kept by the caller (``mfa.passkeys`` stores it,
single-use and short-lived); ``registration_verify`` and ``assertion_verify`` raise
``CredentialRefused`` for anything that is not a valid answer to it, never another error.
"""
import re
import secrets
from dataclasses import dataclass
from typing import Any

from fido2.server import Fido2Server
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    AttestationConveyancePreference,
    AttestedCredentialData,
    AuthenticationResponse,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    RegistrationResponse,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

CHALLENGE_BYTES = 32
MAX_CREDENTIAL_JSON = 64 * 1024


class CredentialRefused(Exception):
    """The browser's or app's answer is not a valid one (malformed, wrong origin or RP id,
    wrong challenge, bad signature, unknown credential). Counted as a wrong code."""


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the host, without port
    origin: str  # scheme://host[:port]
    name: str

    @classmethod
    def for_host(cls, *, scheme: str, host: str, name: str) -> "RelyingParty":
        """``host`` as Django's ``request.get_host()`` gives it (validated against ALLOWED_HOSTS)."""
        rp_id = re.sub(r":\d+$", "", host).strip("[]").lower()
        return cls(id=rp_id, origin=f"{scheme}://{host.lower()}", name=name or rp_id)

    def server(self) -> Fido2Server:
        return Fido2Server(
            PublicKeyCredentialRpEntity(name=self.name, id=self.id),
            attestation=AttestationConveyancePreference.NONE,
            verify_origin=lambda origin: secrets.compare_digest(str(origin).lower(), self.origin),
        )


@dataclass(frozen=True)
class NewCredential:
    credential_id: str  # base64url
    public_key: bytes  # the attested credential data
    sign_count: int


@dataclass(frozen=True)
class Assertion:
    credential_id: str  # base64url
    sign_count: int


def new_challenge() -> str:
    return websafe_encode(secrets.token_bytes(CHALLENGE_BYTES))


def _descriptors(credential_ids: list[str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=websafe_decode(cid)) for cid in credential_ids]


def creation_options(
    rp: RelyingParty, *, challenge: str, user_handle: bytes, username: str, display_name: str, exclude: list[str]
) -> dict:
    """``{"publicKey": {...}}`` for ``navigator.credentials.create`` (JSON: binary as base64url)."""
    options, _state = rp.server().register_begin(
        PublicKeyCredentialUserEntity(id=user_handle, name=username, display_name=display_name),
        credentials=_descriptors(exclude),
        resident_key_requirement=ResidentKeyRequirement.PREFERRED,
        user_verification=UserVerificationRequirement.PREFERRED,
        challenge=websafe_decode(challenge),
        extensions={"credProps": True},
    )
    body = dict(options)
    body["publicKey"]["timeout"] = 300_000
    return body


def request_options(rp: RelyingParty, *, challenge: str, allow: list[str]) -> dict:
    """``{"publicKey": {...}}`` for ``navigator.credentials.get``."""
    options, _state = rp.server().authenticate_begin(
        credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement.PREFERRED,
        challenge=websafe_decode(challenge),
    )
    body = dict(options)
    body["publicKey"]["timeout"] = 300_000
    return body


def _state(challenge: str) -> dict:
    return {"challenge": challenge, "user_verification": UserVerificationRequirement.PREFERRED}


def response_challenge(credential: Any) -> str | None:
    """The challenge a browser's answer claims to answer (read from its client data, not yet
    trusted), so the caller can find and spend it; None when the answer is malformed."""
    try:
        parsed = _parse(credential, AuthenticationResponse if "authenticatorData" in credential.get("response", {}) else RegistrationResponse)
        return websafe_encode(parsed.response.client_data.challenge)
    except CredentialRefused:
        return None
    except (AttributeError, TypeError):
        return None


def response_credential_id(credential: Any) -> str | None:
    try:
        return websafe_encode(_parse(credential, AuthenticationResponse).raw_id)
    except CredentialRefused:
        return None


def _parse(credential: Any, kind):
    if not isinstance(credential, dict):
        raise CredentialRefused("not an object")
    try:
        return kind.from_dict(credential)
    except Exception as exc:  # fido2 raises many kinds on malformed input (ValueError, KeyError, CBOR errors …)
        raise CredentialRefused("malformed") from exc


def registration_verify(rp: RelyingParty, *, challenge: str, credential: Any) -> NewCredential:
    """Check a ``navigator.credentials.create`` answer against ``challenge`` and ``rp``."""
    response = _parse(credential, RegistrationResponse)
    try:
        auth_data = rp.server().register_complete(_state(challenge), response)
    except Exception as exc:  # ValueError for a wrong answer; anything else is malformed input
        raise CredentialRefused(str(exc)) from exc
    data = auth_data.credential_data
    if data is None:
        raise CredentialRefused("no credential data")
    return NewCredential(credential_id=websafe_encode(data.credential_id), public_key=bytes(data), sign_count=auth_data.counter)


def assertion_verify(rp: RelyingParty, *, challenge: str, credential: Any, public_key: bytes) -> Assertion:
    """Check a ``navigator.credentials.get`` answer against ``challenge``, ``rp`` and the stored
    ``public_key`` (attested credential data) of the credential it names."""
    response = _parse(credential, AuthenticationResponse)
    try:
        stored = AttestedCredentialData(public_key)
        rp.server().authenticate_complete(_state(challenge), [stored], response)
    except Exception as exc:
        raise CredentialRefused(str(exc)) from exc
    return Assertion(credential_id=websafe_encode(response.raw_id), sign_count=response.response.authenticator_data.counter)


def sign_count_ok(*, stored: int, presented: int) -> bool:
    """WebAuthn §6.1.1: a counter that does not move forward means a cloned authenticator,
    unless both are 0 (authenticators without a counter, as most synced passkeys)."""
    return presented > stored or (presented == 0 and stored == 0)


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"),
            ("Windows", "Windows"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def default_name(user_agent: str) -> str:
    """"Passkey on Chrome, macOS" from a User-Agent; "Passkey" when it says nothing useful."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    where = ", ".join(part for part in (browser, system) if part)
    return f"Passkey on {where}" if where else "Passkey"

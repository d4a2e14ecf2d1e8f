"""The Clients API's shapes (camelCase), inputs strict as the rest of the API's.

Redirect URIs and origins are https URLs of a host name (with a dot and a letter TLD),
``localhost`` or ``127.0.0.1``, or plain http URLs of ``localhost`` or ``127.0.0.1``: the pattern below is both checked and published in the
OpenAPI schema, so what the schema allows is what the server accepts (django-oauth-toolkit's
own URI checks run after it, in the model)."""
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import InputSerializer, StrictBooleanField, StrictCharField, StrictChoiceField
from oidc.models import Application

CLIENT_TYPES = [Application.CLIENT_PUBLIC, Application.CLIENT_CONFIDENTIAL]


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
_PORT = r"(?::[1-9][0-9]{0,4})?"
# https for any host; plain http only for a loopback host (RFC 8252 §7.3).
_ORIGIN = rf"(?:https://(?:localhost|127\.0\.0\.1|(?:{_LABEL}\.){{1,4}}[a-z]{{2,12}}){_PORT}|http://(?:localhost|127\.0\.0\.1){_PORT})"
ORIGIN_PATTERN = rf"^{_ORIGIN}$"
REDIRECT_PATTERN = rf"^{_ORIGIN}(?:/[A-Za-z0-9._~-]+)*/?$"


def _uri_field(pattern: str, message: str):
    @extend_schema_field({"type": "string", "pattern": pattern, "maxLength": 2000})
    class UriField(StrictCharField):
        pass

    return UriField(max_length=2000, validators=[RegexValidator(pattern, message=message, code="invalid_uri")])


def _uri_list(pattern: str, message: str, **kwargs):
    return serializers.ListField(child=_uri_field(pattern, message), max_length=50, **kwargs)


def _redirect_uris(**kwargs):
    return _uri_list(REDIRECT_PATTERN, "An https URL (http only for localhost and 127.0.0.1), with an optional path (no query, no fragment).", **kwargs)


def _origins(**kwargs):
    return _uri_list(ORIGIN_PATTERN, "An origin: https://host[:port] (http only for localhost and 127.0.0.1), nothing after it.", **kwargs)


class ClientSerializer(serializers.Serializer):
    clientId = serializers.CharField(source="client_id", help_text="The OAuth `client_id`.")
    name = serializers.CharField(help_text="Shown on the consent page.")
    clientType = serializers.ChoiceField(source="client_type", choices=CLIENT_TYPES, help_text="`public` (no secret, PKCE required) or `confidential` (a secret).")
    redirectUris = serializers.SerializerMethodField(help_text="Exact redirect URIs the authorize endpoint will send people back to.")
    postLogoutRedirectUris = serializers.SerializerMethodField(help_text="Where RP-initiated logout may send people afterwards.")
    allowedOrigins = serializers.SerializerMethodField(help_text="Browser origins allowed to call the token endpoint and the REST API (CORS).")
    skipConsent = serializers.BooleanField(source="skip_authorization", help_text="True: no consent page for this client.")
    createdAt = serializers.DateTimeField(source="created")

    def get_redirectUris(self, client) -> list[str]:
        return client.redirect_uris.split()

    def get_postLogoutRedirectUris(self, client) -> list[str]:
        return client.post_logout_redirect_uris.split()

    def get_allowedOrigins(self, client) -> list[str]:
        return client.allowed_origins.split()


class ClientCreatedSerializer(ClientSerializer):
    clientSecret = serializers.CharField(
        required=False, help_text="Only in the answer to creating a confidential client: shown this once, stored hashed."
    )


class ClientCreateInput(InputSerializer):
    name = StrictCharField(max_length=255, trim_whitespace=False)
    clientType = StrictChoiceField(source="client_type", choices=CLIENT_TYPES)
    redirectUris = _redirect_uris(source="redirect_uris", min_length=1)
    postLogoutRedirectUris = _redirect_uris(source="post_logout_redirect_uris", required=False)
    allowedOrigins = _origins(source="allowed_origins", required=False)
    skipConsent = StrictBooleanField(source="skip_authorization", required=False)


class ClientUpdateInput(InputSerializer):
    """Every field optional; the client's id and type never change (make a new client)."""

    name = StrictCharField(max_length=255, trim_whitespace=False, required=False)
    redirectUris = _redirect_uris(source="redirect_uris", min_length=1, required=False)
    postLogoutRedirectUris = _redirect_uris(source="post_logout_redirect_uris", required=False)
    allowedOrigins = _origins(source="allowed_origins", required=False)
    skipConsent = StrictBooleanField(source="skip_authorization", required=False)

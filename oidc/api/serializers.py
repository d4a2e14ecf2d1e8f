"""The Clients API's shapes (camelCase), inputs strict as the rest of the API's."""
from rest_framework import serializers

from accounts.api.serializers import InputSerializer, StrictBooleanField, StrictCharField, StrictChoiceField
from oidc.models import Application

CLIENT_TYPES = [Application.CLIENT_PUBLIC, Application.CLIENT_CONFIDENTIAL]


def _uri_list(**kwargs):
    return serializers.ListField(child=StrictCharField(max_length=2000), max_length=50, **kwargs)


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
    name = StrictCharField(max_length=255)
    clientType = StrictChoiceField(source="client_type", choices=CLIENT_TYPES)
    redirectUris = _uri_list(source="redirect_uris", min_length=1)
    postLogoutRedirectUris = _uri_list(source="post_logout_redirect_uris", required=False)
    allowedOrigins = _uri_list(source="allowed_origins", required=False)
    skipConsent = StrictBooleanField(source="skip_authorization", required=False)


class ClientUpdateInput(InputSerializer):
    """Every field optional; the client's id and type never change (make a new client)."""

    name = StrictCharField(max_length=255, required=False)
    redirectUris = _uri_list(source="redirect_uris", min_length=1, required=False)
    postLogoutRedirectUris = _uri_list(source="post_logout_redirect_uris", required=False)
    allowedOrigins = _uri_list(source="allowed_origins", required=False)
    skipConsent = StrictBooleanField(source="skip_authorization", required=False)

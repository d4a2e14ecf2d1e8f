"""OpenAPI for the Clients API (drf-spectacular), beside its serializers."""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_view

from accounts.api.schema import ADMIN_ERRORS, BODY_ERRORS, answer_with_examples, api_operation
from oidc.api.serializers import ClientCreateInput, ClientCreatedSerializer, ClientSerializer, ClientUpdateInput

CLIENTS_TAG = ["Clients"]
CLIENT_ID = OpenApiParameter("client_id", str, OpenApiParameter.PATH, description="The client's `clientId`.")
CLIENT_EXAMPLE = {
    "clientId": "q3V1mB9xP0dKc7rZ2sT5wY8uE4iO6aLh",
    "name": "Photo Album",
    "clientType": "confidential",
    "redirectUris": ["https://photos.example.com/oidc/callback"],
    "postLogoutRedirectUris": ["https://photos.example.com/"],
    "allowedOrigins": ["https://photos.example.com"],
    "skipConsent": False,
    "createdAt": "2025-01-01T09:00:00Z",
}
CLIENT_RESPONSE = answer_with_examples(ClientSerializer, {"Client": CLIENT_EXAMPLE})

client_list = extend_schema_view(
    get=api_operation(
        tags=CLIENTS_TAG,
        operation_id="clients_list",
        summary="List the tenant's OpenID Connect clients",
        description="Oldest first, in pages: follow `next` (a full URL, null on the last page).",
        answer={200: ClientSerializer(many=True)},
        errors=("invalid_request", *ADMIN_ERRORS),
    ),
    post=api_operation(
        tags=CLIENTS_TAG,
        operation_id="clients_create",
        summary="Register a client",
        description=(
            "A `confidential` client's `clientSecret` is in this answer only: Gatehouse stores only its hash. "
            "Public clients (single-page and mobile apps) have no secret and must use PKCE (S256). "
            "Redirect URIs must match exactly at the authorize endpoint."
        ),
        request=ClientCreateInput,
        answer={201: answer_with_examples(ClientCreatedSerializer, {"Created": {**CLIENT_EXAMPLE, "clientSecret": "shown-once-0123456789abcdef"}})},
        errors=(*BODY_ERRORS, *ADMIN_ERRORS),
        examples={"Web app": {"name": "Photo Album", "clientType": "confidential", "redirectUris": ["https://photos.example.com/oidc/callback"]}},
    ),
)

_client_change = dict(
    tags=CLIENTS_TAG,
    description="Every field is optional; fields left out keep their values. PUT and PATCH are the same. The id, type and secret never change.",
    parameters=(CLIENT_ID,),
    request=ClientUpdateInput,
    answer={200: CLIENT_RESPONSE},
    errors=(*BODY_ERRORS, *ADMIN_ERRORS),
    examples={"Skip consent": {"skipConsent": True}},
)

client_detail = extend_schema_view(
    get=api_operation(
        tags=CLIENTS_TAG, operation_id="clients_get", summary="Get a client",
        description="A client of this tenant (404 for any other id).", parameters=(CLIENT_ID,),
        answer={200: CLIENT_RESPONSE}, errors=ADMIN_ERRORS,
    ),
    put=api_operation(operation_id="clients_update", summary="Change a client", **_client_change),
    patch=api_operation(operation_id="clients_partial_update", summary="Change a client (same as PUT)", **_client_change),
    delete=api_operation(
        tags=CLIENTS_TAG, operation_id="clients_delete", summary="Delete a client",
        description="The client goes, with its codes and tokens: none of them works afterwards.",
        parameters=(CLIENT_ID,), answer={204: OpenApiResponse(description="Deleted.")}, errors=ADMIN_ERRORS,
    ),
)

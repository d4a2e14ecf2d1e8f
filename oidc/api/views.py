"""``/tenant/<tenant_id>/v2/Clients``: a tenant's OpenID Connect clients, for its admins."""
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response

from accounts.api.pagination import ApiCursorPagination
from accounts.api.views import AdminView
from oidc.api import schema as docs
from oidc.api.serializers import ClientCreateInput, ClientCreatedSerializer, ClientSerializer, ClientUpdateInput
from oidc.selectors import client_get_or_none, client_list
from oidc.services import client_create, client_delete, client_update


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ClientPagination(ApiCursorPagination):
    ordering = ("created", "id")


@docs.client_list
class ClientListView(AdminView):
    pagination_class = ClientPagination
    serializer_class = ClientSerializer

    def get(self, request, tenant_id):
        page = self.paginate_queryset(client_list(tenant_id=self.tenant.pk))
        return self.get_paginated_response(ClientSerializer(page, many=True).data)

    def post(self, request, tenant_id):
        client, secret = client_create(tenant=self.tenant, **_validated(ClientCreateInput, request))
        body = ClientSerializer(client).data
        if secret is not None:
            body["clientSecret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)


@docs.client_detail
class ClientDetailView(AdminView):
    def get_object(self):
        client = client_get_or_none(tenant_id=self.tenant.pk, client_id=self.kwargs["client_id"])
        if client is None:
            raise Http404("No such client.")
        return client

    def get(self, request, tenant_id, client_id):
        return Response(ClientSerializer(self.get_object()).data)

    def _change(self, request):
        client = client_update(client=self.get_object(), **_validated(ClientUpdateInput, request))
        return Response(ClientSerializer(client).data)

    def put(self, request, tenant_id, client_id):
        return self._change(request)

    def patch(self, request, tenant_id, client_id):
        return self._change(request)

    def delete(self, request, tenant_id, client_id):
        client_delete(client=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

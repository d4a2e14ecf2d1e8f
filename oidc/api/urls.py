"""``/tenant/<tenant_id>/v2/Clients…`` (capitalised, no trailing slash, like ``Users``)."""
from django.urls import path

from oidc.api import views

app_name = "clients-api"

urlpatterns = [
    path("Clients", views.ClientListView.as_view(), name="clients"),
    path("Clients/<str:client_id>", views.ClientDetailView.as_view(), name="client"),
]

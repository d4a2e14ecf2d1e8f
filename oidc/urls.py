"""Mounted at /tenant/<tenant_id>/oauth/ (``oauth_urlpatterns``, namespace ``oidc``) and
/tenant/<tenant_id>/.well-known/ (``wellknown_urlpatterns``, namespace ``oidc-wellknown``)."""
from django.urls import path

from oidc import views

oauth_urlpatterns = (
    [
        path("authorize/", views.AuthorizeView.as_view(), name="authorize"),
        path("token/", views.TenantTokenView.as_view(), name="token"),
        path("userinfo/", views.TenantUserInfoView.as_view(), name="userinfo"),
        path("revoke/", views.TenantRevokeTokenView.as_view(), name="revoke"),
        path("logout/", views.TenantLogoutView.as_view(), name="logout"),
    ],
    "oidc",
)

wellknown_urlpatterns = (
    [
        path("openid-configuration", views.DiscoveryView.as_view(), name="discovery"),
        path("jwks.json", views.JwksView.as_view(), name="jwks"),
    ],
    "oidc-wellknown",
)

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import OperatorSignInView
from oidc.urls import oauth_urlpatterns, wellknown_urlpatterns

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="operator-login", permanent=False)),
    path("login/", OperatorSignInView.as_view(), name="operator-login"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("tenant/<slug:tenant_id>/v2/", include("accounts.api.urls")),
    path("tenant/<slug:tenant_id>/v2/", include("oidc.api.urls")),
    path("tenant/<slug:tenant_id>/oauth/", include(oauth_urlpatterns)),
    path("tenant/<slug:tenant_id>/.well-known/", include(wellknown_urlpatterns)),
    path("tenant/<slug:tenant_id>/", include("accounts.urls")),
    path("tenant/<slug:tenant_id>/", include("mfa.urls")),
]

handler400 = "config.views.handler400"
handler404 = "config.views.handler404"
handler500 = "config.views.handler500"

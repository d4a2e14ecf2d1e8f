from django.http import HttpResponse
from django.urls import include, path


def done(request):
    return HttpResponse(b"signed in", content_type="text/plain")


urlpatterns = [
    path("accounts/", include("allauth.urls")),  # pages: /accounts/login/, /accounts/2fa/authenticate/
    path("_allauth/", include("allauth.headless.urls")),  # API: /_allauth/{browser,app}/v1/...
    path("done/", done),  # the trivial view (the first peer has the same)
]

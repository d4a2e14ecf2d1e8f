from django.http import HttpResponse
from django.urls import include, path
from two_factor.urls import urlpatterns as two_factor_urls


def done(request):
    return HttpResponse(b"signed in", content_type="text/plain")


urlpatterns = [
    path("", include(two_factor_urls)),
    path("done/", done),
]

"""The product's URLs plus ``/bench/empty/``: the cheapest response Django can give through
the same server, middleware and settings (the baseline for the cheap endpoints)."""
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from config.urls import handler400, handler404, handler500  # noqa: F401


@require_GET
def empty(request):
    return HttpResponse(b"", content_type="text/plain")


urlpatterns = [
    path("bench/empty/", empty),
    path("", include("config.urls")),
]

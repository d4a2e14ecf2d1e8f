"""Error pages: JSON under the API, plain pages elsewhere. Never a trace."""
from django.http import JsonResponse
from django.views.defaults import page_not_found, server_error


def _is_api(request) -> bool:
    parts = request.path.split("/")
    return request.path.startswith("/api/") or (len(parts) > 3 and parts[1] == "tenant" and parts[3] == "v2")


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": "not_found", "detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse({"error": "server_error", "detail": "Something went wrong on our side."}, status=500)
    return server_error(request)


def handler400(request, exception=None):
    if _is_api(request):
        return JsonResponse({"error": "bad_request", "detail": "The request could not be understood."}, status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)

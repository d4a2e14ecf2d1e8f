"""Response headers Django 5.2 does not set by itself: a Content-Security-Policy and no-store."""
from django.conf import settings

# Pages that ship third-party UI (Swagger UI, the Django admin) set inline style attributes.
_INLINE_STYLE_PREFIXES = ("/api/docs/", "/admin/")


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if request.path.startswith(_INLINE_STYLE_PREFIXES):
            policy = policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
        response.headers.setdefault("Content-Security-Policy", policy)
        if not request.path.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/" + settings.STATIC_URL):
            # Sign-in pages, codes and tokens must never sit in a shared or browser cache.
            response.headers["Cache-Control"] = "no-store"
        return response

"""Response headers Django 5.2 does not set by itself (a Content-Security-Policy and
no-store), and the language of each request."""
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers

from tenants.selectors import tenant_default_language

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
        logo = getattr(request, "tenant_logo_url", "")
        if logo:
            # A tenant's logo (an https:// URL set by its admin) may come from its own host.
            parts = urlsplit(logo)
            policy = policy.replace("img-src 'self'", f"img-src 'self' {parts.scheme}://{parts.netloc}")
        response.headers.setdefault("Content-Security-Policy", policy)
        if not request.path.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/" + settings.STATIC_URL):
            # Sign-in pages, codes and tokens must never sit in a shared or browser cache.
            response.headers["Cache-Control"] = "no-store"
        return response


def accepted_language(header: str) -> str | None:
    """The first language of an ``Accept-Language`` header (by q-value) that Gatehouse has."""
    choices = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, _sep, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            choices.append((-quality, position, tag.strip()))
    for _quality, _position, tag in sorted(choices):
        try:
            return translation.get_supported_language_variant(tag.lower())
        except LookupError:
            continue
    return None


class TenantLocaleMiddleware:
    """Django's ``LocaleMiddleware`` with one change of source: the language is the first
    one of the browser's ``Accept-Language`` that Gatehouse has, else the tenant's
    ``default_language`` (a policy field), else ``LANGUAGE_CODE``. It is chosen in
    ``process_view``, where the URL's ``tenant_id`` is known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = settings.LANGUAGE_CODE
        response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", translation.get_language())
        translation.deactivate()
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        language = accepted_language(request.headers.get("Accept-Language", ""))
        if language is None and view_kwargs.get("tenant_id"):
            language = tenant_default_language(tenant_id=view_kwargs["tenant_id"])
        language = language or settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        return None

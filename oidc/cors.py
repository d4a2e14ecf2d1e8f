"""CORS for browsers of a tenant's clients (django-cors-headers' ``check_request_enabled``).

A request to a tenant's REST API or token/userinfo/revocation endpoint (``CORS_URLS_REGEX``)
from an origin that one of *that tenant's* clients lists in its allowed origins gets the
CORS headers (preflight answered); any other origin gets none. No credentials (cookies)
are ever allowed across origins: these calls carry Bearer tokens or client credentials.
"""
import re

from django.conf import settings
from oauth2_provider.models import is_origin_allowed

from oidc.selectors import client_origins

_TENANT_PATH = re.compile(r"^/tenant/(?P<tenant_id>[a-z0-9][a-z0-9-]{1,62})/")


def cors_allowed_for_request(sender, request, **kwargs) -> bool:
    origin = request.headers.get("Origin")
    match = _TENANT_PATH.match(request.path_info)
    # django-cors-headers enables a request when CORS_URLS_REGEX *or* a receiver says so:
    # the paths are checked here too.
    if not origin or match is None or not re.match(settings.CORS_URLS_REGEX, request.path_info):
        return False
    return is_origin_allowed(origin, client_origins(tenant_id=match["tenant_id"]))

"""The API's only parser: JSON, at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (1 MiB).

DRF hands a non-``JSONParser`` parser the raw request stream and never applies Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` to it, so the limit is enforced here twice: from the
declared Content-Length before reading, and from the bytes actually read (never more
than the limit plus one).
"""
import codecs
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.settings import api_settings

from accounts.api.errors import PayloadTooLarge
from django.utils.translation import gettext_lazy as _


class LimitedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if request is not None and limit is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise PayloadTooLarge()
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(_("The request body is not valid UTF-8.")) from None
        try:
            return json.loads(
                text, parse_constant=_refuse_constant if api_settings.STRICT_JSON else None
            )
        except (ValueError, RecursionError):
            raise ParseError(_("The request body is not valid JSON.")) from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")

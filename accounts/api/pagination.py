"""Cursor pagination (DRF's), answering the contract's ``{results, next}``."""
import binascii
from base64 import b64decode
from datetime import datetime

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from django.utils.translation import gettext_lazy as _


class ApiCursorPagination(CursorPagination):
    """Opaque ``?cursor=``; ``next`` is a full URL or null; ``?limit=`` up to 200 (default 50)."""

    page_size = 50
    page_size_query_param = "limit"
    page_size_query_description = "How many results per page (1–200, default 50)."
    max_page_size = 200
    ordering = ("created_at", "id")

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({"limit": [_("A whole number from 1 to %(max)d.") % {"max": self.max_page_size}]})
        return super().get_page_size(request)

    def decode_cursor(self, request):
        try:
            encoded = request.query_params.get(self.cursor_query_param)
            if encoded is not None:
                b64decode(encoded.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                datetime.fromisoformat(cursor.position)
        except (NotFound, ValueError, UnicodeError, binascii.Error):
            raise ValidationError({"cursor": [_("This cursor is not valid; use the `next` URL of a previous page.")]}) from None
        return cursor

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The URL of the next page, or null on the last page.",
                },
            },
        }


class NewestFirstPagination(ApiCursorPagination):
    ordering = ("-created_at", "-id")

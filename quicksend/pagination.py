"""Keyset (cursor) pagination for every list: never OFFSET on large tables.

Two front ends over one rule (the page after a cursor is the rows strictly beyond the last row's
(ordering value, id) pair):

* ``CursorPagination``: DRF list views over model instances (CRM records, My Messages);
* ``Keyset``: lists built from ``values()`` rows, where the view pages by hand in both directions (the inbox's
  conversations and a conversation's thread): ``cursor(row)``, ``read(cursor)``, ``beyond(...)``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import ValidationError

from quicksend.bounded_ids import parse_id

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# ``page_size`` in the OpenAPI schema: what the server takes (a larger ask gets MAX_PAGE_SIZE).
PAGE_SIZE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}


class CursorPagination(pagination.CursorPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"

    def get_schema_operation_parameters(self, view):
        # The schema says what the server takes: 1 … max_page_size (a larger ask gets max_page_size).
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = (
                    f"Items per page: 1 … {self.max_page_size} (default {self.page_size})."
                )
        return parameters


def page_size(request, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The ``page_size`` query parameter, kept within 1 … ``maximum``."""
    try:
        return max(1, min(int(request.query_params.get("page_size", default)), maximum))
    except ValueError:
        raise ValidationError({"page_size": "Must be a number."})


@dataclass(frozen=True)
class Keyset:
    """Keyset paging of ``values()`` rows ordered by (``field``, id), e.g. ``Keyset("created_at")``.

    A cursor is the opaque text of a row's (date-time, id); ``read`` refuses anything else with a 400 naming
    ``name`` (the query parameter it came in).
    """

    field: str

    def cursor(self, row: dict) -> str:
        return base64.urlsafe_b64encode(f"{row[self.field].isoformat()}|{row['id']}".encode()).decode()

    def read(self, cursor: str, name: str = "cursor") -> tuple[datetime, int]:
        try:
            at_text, pk_text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
            at = parse_datetime(at_text)
            if at is None:
                raise ValueError
            return at, parse_id(pk_text, name)
        except (ValueError, UnicodeDecodeError, TypeError, DjangoValidationError):
            raise ValidationError({name: "Invalid cursor."})

    def beyond(self, position: tuple[datetime, int], *, descending: bool) -> Q:
        """The rows after ``position`` in the order (descending: older ones; else newer ones)."""
        at, pk = position
        op = "lt" if descending else "gt"
        return Q(**{f"{self.field}__{op}": at}) | Q(**{self.field: at, f"pk__{op}": pk})

"""API-wide helpers: the exception handler and the serializer base that refuses unknown fields."""

from __future__ import annotations

from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from quicksend.errors import api_error_body


def exception_handler(exc, context):
    """The one mapping of errors to API answers: domain errors and Django's validation and permission errors
    (``quicksend.errors.api_error_body``), then DRF's own."""
    # The same 404 body for "missing" and "not yours".
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    answer = api_error_body(exc)
    if answer is not None:
        body, status = answer
        set_rollback()
        return Response(body, status=status)
    return drf_exception_handler(exc, context)


class StrictSerializerMixin:
    """Reject payload keys the serializer does not know, naming them (a typo must not be silently dropped)."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            known = set(self.fields)
            unknown = sorted(set(data.keys()) - known)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: ["Unknown field. Allowed fields: " + ", ".join(sorted(known)) + "."]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    pass


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    pass


def refuse_null_characters(params) -> None:
    """A query parameter with a NUL byte is refused by name: PostgreSQL can neither store nor compare such
    text, so the query would fail (a 500) instead of answering."""
    for name, value in params.items():
        if "\x00" in value:
            raise serializers.ValidationError({name: ["Null characters are not allowed."]})

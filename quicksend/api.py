"""API-wide helpers: the exception handler, the serializer base that refuses unknown fields, and output
serializers whose fields are built once."""

from __future__ import annotations

import threading

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


class FieldsBuiltOnceMixin:
    """For an output serializer (it only turns rows into JSON): its fields are built once per class and
    shared by every instance, instead of per instance as DRF does.

    A ``ModelSerializer`` builds its fields from the model on every instantiation (each field's label, its
    validators, a deep copy of the declared ones); answering one send spent more CPU there than on its
    writes. Only for serializers whose fields do not read ``context`` or keep state between rows: plain
    model fields, primary keys, nested serializers of the same kind. The shared fields are bound to a
    serializer of their own (no instance), never to one that carries a request's row."""

    _shared_fields_lock = threading.Lock()

    @property
    def fields(self):
        cls = type(self)
        shared = cls.__dict__.get("_shared_fields")
        if shared is None:
            with FieldsBuiltOnceMixin._shared_fields_lock:
                shared = cls.__dict__.get("_shared_fields")
                if shared is None:
                    shared = serializers.Serializer.fields.func(cls())
                    cls._shared_fields = shared
        return shared


def refuse_null_characters(params) -> None:
    """A query parameter with a NUL byte is refused by name: PostgreSQL can neither store nor compare such
    text, so the query would fail (a 500) instead of answering."""
    for name, value in params.items():
        if "\x00" in value:
            raise serializers.ValidationError({name: ["Null characters are not allowed."]})

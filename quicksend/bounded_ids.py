"""Ids and integers from the outside world, checked against the range the database can store.

A value past a 64-bit integer makes SQLite raise ``OverflowError`` and PostgreSQL refuse the query, both
500s; every id taken from a query parameter or a payload goes through one of these first, so the caller
gets a 400 naming the parameter instead:

* ``parse_id(raw, name)``: one query-parameter id (``?owner=7``) → int, or a ``ValidationError`` naming
  ``name``;
* ``BoundedIdField``: a serializer integer that must be a storable id (e.g. the child of ``member_ids``);
* ``OrgScopedPrimaryKeyRelatedField``: a payload id that must name an object of the request's
  organization (foreign and missing ids read the same), refused by range before any query;
* ``BoundedModelMultipleChoiceField``: the page-form twin for a list of ids (checkboxes, multi-selects).
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# The largest value of a 64-bit signed integer: BigAutoField, PostgreSQL bigint, SQLite INTEGER.
MAX_ID = 2**63 - 1
# An id in the OpenAPI schema (a query parameter's type, e.g. ``OpenApiParameter("team", ID_SCHEMA)``).
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def out_of_range_message(name: str) -> str:
    return f"{name} must be a whole number between 1 and {MAX_ID}."


def parse_id(raw, name: str) -> int:
    """``raw`` (a query-parameter string or a number) as a storable id; a ``ValidationError`` naming
    ``name`` otherwise."""
    text = str(raw).strip()
    if not text.isdigit() or not text.isascii():
        raise ValidationError({name: out_of_range_message(name)})
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise ValidationError({name: out_of_range_message(name)})
    return value


class BoundedIdField(serializers.IntegerField):
    """An integer id the database can store (1 … 2⁶³−1); the schema says so."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class OrgScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key that must name an object of the request's organization; foreign ids read as missing.

    ``scope(org)`` returns the queryset of allowed objects (``org`` is None when there is no request, e.g.
    while the schema is generated: return the unfiltered queryset then).
    """

    default_error_messages = {
        "does_not_exist": "Not found: no object with id {pk_value} in this organization.",
        "out_of_range": f"Ids are whole numbers between 1 and {MAX_ID}.",
    }

    def __init__(self, scope: Callable[[object], QuerySet], **kwargs):
        self.scope = scope
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        org = getattr(request, "org", None)
        if org is None:
            return self.scope(None).none()
        return self.scope(org)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            parse_id(data, self.field_name or "id")
        except ValidationError:
            self.fail("out_of_range")
        return super().to_internal_value(data)


class BoundedModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A multiple choice of objects by id whose ids are range-checked before the lookup (a tampered form
    gets the field's "not a valid value" error, not a 500)."""

    def _check_values(self, value):
        if self.to_field_name is None:
            for pk in value:
                try:
                    parse_id(pk, "id")
                except ValidationError:
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                    )
        return super()._check_values(value)


class BoundedModelChoiceField(forms.ModelChoiceField):
    """One object by id, its id range-checked before the lookup (a tampered form gets "not a valid
    choice")."""

    def to_python(self, value):
        if value not in self.empty_values and self.to_field_name is None:
            try:
                parse_id(value, "id")
            except ValidationError:
                raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)

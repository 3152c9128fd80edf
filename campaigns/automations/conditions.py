"""Conditions over a record's fields: pure functions, so the dry run and the engine agree.

``record_values(record)`` flattens a CRM record into ``{field: value}`` (its own fields, ``owner``/``team`` as
ids, and its custom fields, also reachable as ``custom.<key>``). ``matches(conditions, values)`` evaluates
``{"match": "all"|"any", "rules": [{"field", "op", "value"}]}``; an empty rule list matches everything.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime


def record_values(record) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in record._meta.concrete_fields:
        if f.is_relation:
            values[f.name] = getattr(record, f.attname)
        else:
            values[f.name] = getattr(record, f.attname)
    values["record_type"] = record.record_type
    for key, value in (record.custom_fields or {}).items():
        values[f"custom.{key}"] = value
        values.setdefault(key, value)
    return values


def _empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return "" if value is None else str(value).strip()


def as_moment(value) -> datetime | date | None:
    """A field's value as a date or an aware datetime, or None when it is neither."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            # A bare date stays a date (Python's ISO parser would read it as midnight).
            return parse_date(text) if len(text) == 10 else parse_datetime(text)
        except ValueError:
            return None
    return None


def _compare_moments(left, right) -> int | None:
    a, b = as_moment(left), as_moment(right)
    if a is None or b is None:
        return None
    if isinstance(a, datetime) != isinstance(b, datetime):
        a = a.date() if isinstance(a, datetime) else a
        b = b.date() if isinstance(b, datetime) else b
    elif isinstance(a, datetime) and (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return (a > b) - (a < b)


def rule_holds(rule: dict, values: dict[str, Any]) -> bool:
    value = values.get(rule["field"])
    op, expected = rule["op"], rule.get("value")
    if op == "empty":
        return _empty(value)
    if op == "not_empty":
        return not _empty(value)
    if op == "equals":
        return _text(value).casefold() == _text(expected).casefold()
    if op == "not_equals":
        return _text(value).casefold() != _text(expected).casefold()
    if op == "in":
        return _text(value).casefold() in {_text(v).casefold() for v in expected}
    if op == "contains":
        return _text(expected).casefold() in _text(value).casefold()
    if op in ("before", "after"):
        order = _compare_moments(value, expected)
        if order is None:
            return False
        return order < 0 if op == "before" else order > 0
    return False


def matches(conditions: dict, values: dict[str, Any]) -> bool:
    rules = (conditions or {}).get("rules") or []
    if not rules:
        return True
    results = (rule_holds(rule, values) for rule in rules)
    return any(results) if conditions.get("match") == "any" else all(results)

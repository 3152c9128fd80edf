"""Audit log filtering shared by the page and the API."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime


def filter_audit(qs: QuerySet, params) -> QuerySet:
    if params.get("actor"):
        qs = qs.filter(actor_id=params["actor"]) if str(params["actor"]).isdigit() else qs.none()
    if params.get("object_type"):
        qs = qs.filter(object_type=params["object_type"])
    if params.get("object_id"):
        qs = qs.filter(object_id=params["object_id"])
    if params.get("action"):
        qs = qs.filter(action__startswith=params["action"])
    for key, lookup in (("since", "created_at__gte"), ("until", "created_at__lte")):
        raw = params.get(key)
        if raw:
            value = parse_datetime(raw) or parse_date(raw)
            if value is not None:
                qs = qs.filter(**{lookup: value})
    return qs

"""Audit log filtering shared by the page and the API."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def _moment(raw: str, *, end_of_day: bool) -> datetime | None:
    """Parse a datetime or a date (a date means the whole day, in UTC)."""
    value = parse_datetime(raw)
    if value is None:
        day = parse_date(raw)
        if day is None:
            return None
        value = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def filter_audit(qs: QuerySet, params) -> QuerySet:
    if params.get("actor"):
        qs = qs.filter(actor_id=params["actor"]) if str(params["actor"]).isdigit() else qs.none()
    if params.get("object_type"):
        qs = qs.filter(object_type=params["object_type"])
    if params.get("object_id"):
        qs = qs.filter(object_id=params["object_id"])
    if params.get("action"):
        qs = qs.filter(action__startswith=params["action"])
    since = _moment(params["since"], end_of_day=False) if params.get("since") else None
    until = _moment(params["until"], end_of_day=True) if params.get("until") else None
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs

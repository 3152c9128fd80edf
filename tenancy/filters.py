"""Audit log filtering shared by the page and the API: one form validates the parameters, so a bad date or
an out-of-range id is the form's error (a 400 naming the parameter in the API), never a crash."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from quicksend.bounded_ids import MAX_ID

MOMENT_HELP = "Enter a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM, ISO 8601)."


def parse_moment(raw: str, *, end_of_day: bool) -> datetime:
    """Parse a datetime or a date (a date means the whole day, in UTC); ``ValidationError`` when it is
    neither, or names a day that does not exist (2026-13-45)."""
    try:
        value = parse_datetime(raw)
        if value is None:
            day = parse_date(raw)
            if day is None:
                raise ValidationError(MOMENT_HELP)
            value = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    except (ValueError, OverflowError):
        raise ValidationError(MOMENT_HELP)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


class MomentField(forms.CharField):
    def __init__(self, *, end_of_day: bool, **kwargs):
        self.end_of_day = end_of_day
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return parse_moment(value, end_of_day=self.end_of_day) if value else None


class AuditFilterForm(forms.Form):
    actor = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    object_type = forms.CharField(required=False, max_length=64)
    object_id = forms.CharField(required=False, max_length=64)
    action = forms.CharField(required=False, max_length=64)
    since = MomentField(end_of_day=False)
    until = MomentField(end_of_day=True)


def filter_audit(qs: QuerySet, params) -> QuerySet:
    """Apply the audit filters in ``params``; a ``ValidationError`` naming each bad parameter otherwise."""
    form = AuditFilterForm(params)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    data = form.cleaned_data
    if data["actor"] is not None:
        qs = qs.filter(actor_id=data["actor"])
    if data["object_type"]:
        qs = qs.filter(object_type=data["object_type"])
    if data["object_id"]:
        qs = qs.filter(object_id=data["object_id"])
    if data["action"]:
        qs = qs.filter(action__startswith=data["action"])
    if data["since"]:
        qs = qs.filter(created_at__gte=data["since"])
    if data["until"]:
        qs = qs.filter(created_at__lt=data["until"])
    return qs

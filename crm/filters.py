"""Record list filtering, search and sorting shared by the pages and the API."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from crm.models import CrmRecord, RecordPhone, RecordTypeConfig
from crm.phones import try_normalize_phone
from quicksend.bounded_ids import parse_id

# sort key (query parameter) → ordering; every ordering ends with a unique key for stable cursors.
SORTS = {
    "newest": ("-id",),
    "oldest": ("id",),
    "updated": ("-updated_at", "-id"),
    "name": ("last_name", "first_name", "id"),
    "status": ("status", "-id"),
}
NAME_ORDER = {"first_name", "last_name"}


def sort_ordering(model: type[CrmRecord], key: str | None) -> tuple[str, ...]:
    ordering = SORTS.get(key or "newest", SORTS["newest"])
    if ordering == SORTS["name"] and not hasattr(model, "last_name"):
        # Accounts, cases and opportunities are named by name/subject.
        ordering = ((model.search_fields[0]), "id")
    return ordering


def _text(params, name: str) -> str:
    """A text parameter, stripped. A NUL byte cannot be stored or compared by PostgreSQL (the query would
    fail), so it is refused by name."""
    value = (params.get(name) or "").strip()
    if "\x00" in value:
        raise ValidationError({name: "Null characters are not allowed."})
    return value


def filter_records(qs: QuerySet, model: type[CrmRecord], org, params) -> QuerySet:
    """Apply ``q`` (name/email/company or a phone number in any format), ``phone``, ``owner``, ``team`` and
    ``status`` from ``params``. An ``owner`` or ``team`` that is not an id, or text with a NUL byte, raises
    a ``ValidationError`` naming the parameter."""
    q = _text(params, "q")
    phone = _text(params, "phone")
    if phone:
        qs = _by_phone(qs, model, org, phone)
    if q:
        text = Q()
        words = q.split()
        for word in words:
            word_q = Q()
            for name in model.search_fields:
                word_q |= Q(**{f"{name}__icontains": word})
            text &= word_q
        if model.phone_fields and sum(ch.isdigit() for ch in q) >= 7:
            e164 = try_normalize_phone(
                q, RecordTypeConfig.for_type(org.pk, model.record_type).default_country
            )
            if e164:
                text |= Q(pk__in=_phone_ids(model, org, e164))
        qs = qs.filter(text)
    owner = params.get("owner")
    if owner:
        if owner == "none":
            qs = qs.filter(owner__isnull=True)
        else:
            qs = qs.filter(owner_id=parse_id(owner, "owner"))
    team = params.get("team")
    if team:
        qs = qs.filter(team_id=parse_id(team, "team"))
    status = _text(params, "status")
    if status:
        qs = qs.filter(status=status)
    return qs


def _phone_ids(model: type[CrmRecord], org, e164: str) -> QuerySet:
    return RecordPhone.objects.filter(organization=org, e164=e164, record_type=model.record_type).values(
        "record_id"
    )


def _by_phone(qs: QuerySet, model: type[CrmRecord], org, raw: str) -> QuerySet:
    if not model.phone_fields:
        return qs.none()
    e164 = try_normalize_phone(raw, RecordTypeConfig.for_type(org.pk, model.record_type).default_country)
    if e164 is None:
        return qs.none()
    return qs.filter(pk__in=_phone_ids(model, org, e164))

"""Matching a customer number to the organization's CRM records (for conversations and their header)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm.services import find_records_by_phone
from tenancy.models import Organization


@dataclass(frozen=True)
class RecordMatch:
    """The record a number matched first (by record-type priority) and the others that matched too."""

    record_type: str = ""
    record_id: int | None = None
    other_matches: list[dict] = field(default_factory=list)

    def as_conversation_fields(self) -> dict:
        return {
            "record_type": self.record_type,
            "record_id": self.record_id,
            "other_matches": self.other_matches,
        }


def match_records(org: Organization, number: str) -> RecordMatch:
    """The records of ``org`` with ``number`` (any format) in a phone field: the first by record-type
    priority, then the rest as ``[{"record_type": "lead", "record_id": 3}, ...]``."""
    records = find_records_by_phone(org, number)
    if not records:
        return RecordMatch()
    first, *others = records
    return RecordMatch(
        record_type=first.record_type,
        record_id=first.pk,
        other_matches=[{"record_type": r.record_type, "record_id": r.pk} for r in others],
    )


def match_records_for_numbers(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], RecordMatch]:
    """``match_records`` for many (organization id, number in E.164) pairs at once: one query on the phone
    index for all of them, then one per record type that matched (the order within a type, newest first, and
    across types, by the organization's record-type priority, are ``find_records_by_phone``'s)."""
    from crm.models import RecordPhone, RecordTypeConfig, model_for

    if not pairs:
        return {}
    hits: dict[tuple[int, str], dict[str, set[int]]] = {}
    rows = RecordPhone.objects.filter(
        organization_id__in={o for o, _ in pairs}, e164__in={n for _, n in pairs}
    ).values_list("organization_id", "e164", "record_type", "record_id")
    for org_id, e164, record_type, record_id in rows:
        if (org_id, e164) in pairs:
            hits.setdefault((org_id, e164), {}).setdefault(record_type, set()).add(record_id)
    if not hits:
        return {}
    wanted: dict[tuple[int, str], set[int]] = {}
    for (org_id, _), types in hits.items():
        for record_type, ids in types.items():
            wanted.setdefault((org_id, record_type), set()).update(ids)
    existing: dict[tuple[int, str], list[int]] = {}
    for (org_id, record_type), ids in wanted.items():
        model = model_for(record_type)
        existing[(org_id, record_type)] = list(
            model.objects.filter(organization_id=org_id, pk__in=ids)
            .order_by("-id")
            .values_list("pk", flat=True)
        )
    found: dict[tuple[int, str], RecordMatch] = {}
    for (org_id, e164), types in hits.items():
        records = [
            (config.record_type, pk)
            for config in RecordTypeConfig.cached_all_for(org_id)
            for pk in existing.get((org_id, config.record_type), [])
            if pk in types.get(config.record_type, ())
        ]
        if records:
            (first_type, first_id), *others = records
            found[(org_id, e164)] = RecordMatch(
                record_type=first_type,
                record_id=first_id,
                other_matches=[{"record_type": t, "record_id": pk} for t, pk in others],
            )
    return found

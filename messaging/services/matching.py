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

"""The CRM's one answer to "may this record be texted, and at which number", and the organization's one
phone-number reading.

Messaging asks ``texting(record)`` once per record and gets both halves together: the E.164 number of the
record type's SMS phone field, and whether texting it is allowed (do-not-contact, then the type's compliance
field such as *Allow SMS*, then a number being there), with the reason in plain words when it is not.

Numbers typed without a country code are read with the organization's default country: the one of its
contact record type (``organization_phone`` / ``try_organization_phone``), the country a raw number in a
send, an inbound text, a consent lookup or an inbox search is taken in.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm.models import CrmRecord, RecordType, RecordTypeConfig
from crm.phones import normalize_phone, try_normalize_phone


@dataclass(frozen=True)
class Texting:
    """``allowed``: may the record be texted; ``number``: where texts go (E.164, '' when none);
    ``reason``: why not, in plain words ('' when allowed)."""

    allowed: bool
    number: str
    reason: str = ""


def texting(record: CrmRecord, config: RecordTypeConfig | None = None) -> Texting:
    """May ``record`` be texted, and at which number (``config``: its type's, when the caller has it)."""
    config = config or RecordTypeConfig.for_type(record.organization_id, record.record_type)
    number = getattr(record, f"{config.sms_phone_field}_e164", "") if config.sms_phone_field else ""
    if getattr(record, "do_not_contact", False):
        return Texting(False, number, f"{record} is marked do not contact.")
    if config.compliance_field and not getattr(record, config.compliance_field, True):
        label = record.compliance_fields.get(config.compliance_field, config.compliance_field)
        return Texting(False, number, f"{record} has “{label}” turned off.")
    if not number:
        return Texting(False, "", f"{record} has no number to text.")
    return Texting(True, number)


def organization_country(org_id: int) -> str:
    """The default country of the organization's numbers (its contact record type's)."""
    return RecordTypeConfig.cached_for_type(org_id, RecordType.CONTACT).default_country


def organization_phone(org_id: int, raw: str) -> str:
    """``raw`` as E.164, read with the organization's default country; ``InvalidPhoneNumber`` if it is not a
    phone number."""
    return normalize_phone(raw, organization_country(org_id))


def try_organization_phone(org_id: int, raw: str) -> str | None:
    """Like ``organization_phone``, but None for input that is not a phone number (search boxes, matching)."""
    if raw and str(raw).strip().startswith("+"):
        return try_normalize_phone(raw)  # already international: no country needed (no config read)
    return try_normalize_phone(raw, organization_country(org_id))

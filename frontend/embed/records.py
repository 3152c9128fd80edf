"""Which QuickSend record a CRM page is about: CRM object names to record types, and the record itself."""

from __future__ import annotations

from django.http import Http404

from crm.access import access_record_by_external_id
from crm.models import RecordType
from crm.phones import InvalidPhoneNumber
from crm.services import do_create_record, find_records_by_phone
from crm.texting import organization_phone, texting
from quicksend.errors import DomainError
from tenancy.models import Crm

# Each CRM's names of the objects the widget can be shown on (case-insensitive), to our record types.
OBJECT_NAMES: dict[str, dict[str, str]] = {
    Crm.SALESFORCE: {
        "lead": "lead",
        "contact": "contact",
        "account": "account",
        "case": "case",
        "opportunity": "opportunity",
    },
    Crm.HUBSPOT: {
        "0-1": "contact",
        "contact": "contact",
        "0-2": "account",
        "company": "account",
        "0-3": "opportunity",
        "deal": "opportunity",
        "0-5": "case",
        "ticket": "case",
    },
    Crm.ZOHO: {
        "leads": "lead",
        "contacts": "contact",
        "accounts": "account",
        "deals": "opportunity",
        "cases": "case",
    },
    Crm.DYNAMICS: {
        "lead": "lead",
        "contact": "contact",
        "account": "account",
        "opportunity": "opportunity",
        "incident": "case",
    },
}
# Record types the embed page can create when the CRM's record is not in QuickSend yet (a name and a number
# are all they need).
CREATABLE = ("lead", "contact")


def record_type_for(crm: str, name: str) -> str:
    """Our record type for a CRM's object name (or our own type name); DomainError naming ``record_type``."""
    value = (name or "").strip()
    if value in RecordType.values:
        return value
    found = OBJECT_NAMES.get(crm, {}).get(value.lower())
    if found is None:
        raise DomainError(
            f"'{name}' is not a record type QuickSend can show (one of {', '.join(RecordType.values)}).",
            field="record_type",
        )
    return found


def phone_of(org_id: int, raw: str) -> str:
    try:
        return organization_phone(org_id, raw)
    except InvalidPhoneNumber:
        raise DomainError(f"'{raw}' is not a phone number.", field="phone")


def find_record(org, record_type: str, external_id: str, phone: str):
    """``(record or None, phone)``: the record by its CRM id, else the first record with the number."""
    if record_type and external_id:
        try:
            record = access_record_by_external_id(org, record_type, external_id)
        except Http404:
            return None, phone
        return record, texting(record).number or phone
    if phone:
        records = find_records_by_phone(org, phone)
        return (records[0] if records else None), phone
    return None, ""


def do_create_embedded_record(org, user, session) -> object:
    """The CRM's record, created in QuickSend from the embed page (with the CRM's id, name and number)."""
    record_type = session.record_type or "lead"
    if record_type not in CREATABLE:
        raise DomainError(
            "QuickSend can create leads and contacts from here; this record comes with your CRM's sync.",
            field="record_type",
        )
    first, _, last = (session.name_hint or "").strip().partition(" ")
    data = {
        "first_name": first or "New",
        "last_name": last or (session.phone or "record"),
        "mobile_phone": session.phone,
        "external_id": session.external_id,
        "owner": user,
    }
    return do_create_record(org, user, record_type, data)

"""The ONE merge-field renderer: ``render(body, record, *, sender=None) -> RenderResult``.

Merge fields are written ``{{first_name}}`` (spaces inside the braces are allowed: ``{{ first_name }}``).
Which fields exist depends on the record type (``FIELDS``), plus the sender's and the owner's names for every
type. A field that is unknown, or known but empty on this record, renders as nothing and is reported in
``missing_fields`` (unknown ones also in ``unknown_fields``) so the composer can warn before sending; the
renderer never raises on a template's content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FIELD_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

_PERSON = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name",
    "email": "Email",
    "company": "Company",
    "title": "Title",
    "mobile_phone": "Mobile phone",
    "status": "Status",
}
COMMON = {
    "sender_first_name": "Your first name",
    "sender_name": "Your full name",
    "owner_first_name": "Record owner's first name",
    "owner_name": "Record owner's full name",
}
# Merge fields per record type (documented in docs/messaging.md "Templates and merge fields").
FIELDS: dict[str, dict[str, str]] = {
    "lead": _PERSON,
    "contact": {**_PERSON, "account_name": "Account name"},
    "account": {
        "name": "Name",
        "email": "Email",
        "website": "Website",
        "main_phone": "Main phone",
        "status": "Status",
    },
    "case": {"subject": "Subject", "status": "Status", "contact_name": "Contact's full name"},
    "opportunity": {
        "name": "Name",
        "amount": "Amount",
        "close_date": "Close date",
        "status": "Status",
        "contact_name": "Contact's full name",
    },
}


@dataclass(frozen=True)
class RenderResult:
    text: str
    missing_fields: tuple[str, ...] = field(default=())  # unknown or empty, in order of first use
    unknown_fields: tuple[str, ...] = field(default=())


def fields_for(record_type: str | None) -> dict[str, str]:
    """The merge fields a template for ``record_type`` may use (blank: those every type has)."""
    return {**FIELDS.get(record_type or "", {}), **COMMON}


def _user_name(user, first_only: bool) -> str:
    if user is None:
        return ""
    first = (getattr(user, "first_name", "") or "").strip()
    if first_only:
        return first
    full = f"{first} {(getattr(user, 'last_name', '') or '').strip()}".strip()
    return full


def _value(record, name: str, sender) -> str | None:
    """The field's text, "" when empty, None when the field does not exist for this record."""
    if name == "sender_first_name":
        return _user_name(sender, True)
    if name == "sender_name":
        return _user_name(sender, False)
    owner = getattr(record, "owner", None) if record is not None else None
    if name == "owner_first_name":
        return _user_name(owner, True)
    if name == "owner_name":
        return _user_name(owner, False)
    if record is None or name not in FIELDS.get(record.record_type, {}):
        return None
    if name == "full_name":
        return f"{record.first_name} {record.last_name}".strip()
    if name == "account_name":
        return record.account.name if record.account_id else ""
    if name == "contact_name":
        contact = record.contact if record.contact_id else None
        return f"{contact.first_name} {contact.last_name}".strip() if contact else ""
    if name == "status":
        return dict(record.STATUS_CHOICES).get(record.status, record.status or "")
    value = getattr(record, name, "")
    if value is None:
        return ""
    if name == "amount":
        return f"{value:,.2f}"
    return str(value)


def render(body: str, record=None, *, sender=None) -> RenderResult:
    """Replace every ``{{field}}`` of ``body`` with the record's (or sender's) value."""
    missing: list[str] = []
    unknown: list[str] = []
    cache: dict[str, str] = {}

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in cache:
            value = _value(record, name, sender)
            if value is None:
                unknown.append(name)
                missing.append(name)
                value = ""
            elif not value.strip():
                missing.append(name)
            cache[name] = value
        return cache[name]

    text = FIELD_RE.sub(replace, body or "")
    return RenderResult(text=text, missing_fields=tuple(missing), unknown_fields=tuple(unknown))

"""How a number is named wherever it appears (one place, used by templates, the API and other apps)."""

from __future__ import annotations

from crm.phones import format_for_display


def format_number(phone_number: str) -> str:
    """``+14155550100`` → ``+1 415-555-0100``; short codes stay as they are."""
    return format_for_display(phone_number) if phone_number.startswith("+") else phone_number


def number_label(number) -> str:
    """ "Support – NY · +1 415-555-0100", or Twilio's friendly name when the organization gave no label."""
    if number is None:
        return ""
    shown = format_number(number.phone_number)
    name = number.label or number.friendly_name
    if name and name not in (number.phone_number, shown):
        return f"{name} · {shown}"
    return shown

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


# Who sent a text no agent wrote, as the thread and lists name it (frontend/workspace/format.js has the same
# words for the pages drawn in the browser).
UNATTENDED_SOURCES = {
    "automation": "Automation",
    "campaign": "Campaign",
    "auto_reply": "Automatic reply",
    "sync": "Sent outside QuickSend",
    "other_tool": "Another tool",
}


def preview_sender(source: str, source_label: str = "") -> str:
    """ "Automation: Open house" for a text an automation sent; "You" for one sent from QuickSend by hand."""
    name = UNATTENDED_SOURCES.get(source)
    if name is None:
        return "You"
    return f"{name}: {source_label}" if source_label else name

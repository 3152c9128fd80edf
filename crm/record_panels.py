"""Cards other apps add to a record's page (a campaign's activity with this person, …).

An app above crm registers a function at start-up (``register(panel)``); the record page calls each with the
request and the record and shows what it returns (HTML, or "" for nothing). crm itself knows none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.safestring import SafeString

Panel = Callable[[object, object], str]

_panels: list[Panel] = []


def register(panel: Panel) -> None:
    if panel not in _panels:
        _panels.append(panel)


def panels_for(request, record) -> list[SafeString]:
    shown = []
    for panel in _panels:
        html = panel(request, record)
        if html:
            shown.append(SafeString(html))
    return shown


def phone_numbers(record) -> set[str]:
    """The record's phone numbers in E.164 (every ``*_e164`` field that is set)."""
    return {
        value
        for f in type(record)._meta.concrete_fields
        if f.name.endswith("_e164") and (value := getattr(record, f.name, None))
    }

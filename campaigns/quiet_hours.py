"""Quiet hours: when a recipient may be texted automatically, by the recipient's own clock.

One policy serves automations and campaigns. The recipient's time zone comes from the phone number
(``phonenumbers``' time-zone data, when the number maps to one zone), then the record's, then the
organization's. Two policies:

- ``federal`` (default): 8:00–21:00 every day, local time (the TCPA's calling hours).
- ``strict``: the federal window, narrowed where a state's law is stricter: FL, MD, MS, NJ, OK 8:00–20:00;
  CT 9:00–20:00; TX 9:00–21:00 Monday to Saturday and 12:00–21:00 on Sunday; RI 9:00–18:00 on weekdays and
  10:00–17:00 at weekends. The state comes from the number's area code.

``opening(now, number, …)`` says whether a text may go now and, if not, when the window next opens, with
the reason in the words the run log shows ("Queued — quiet hours until 8:00 their time").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as number_timezones

FEDERAL = "federal"
STRICT = "strict"
POLICIES = (FEDERAL, STRICT)

# (first hour, last hour) per weekday, Monday = 0.
Window = tuple[time, time]
_FEDERAL: Window = (time(8), time(21))
_EIGHT_TO_EIGHT: Window = (time(8), time(20))
_STATE_WINDOWS: dict[str, tuple[Window, ...]] = {
    **{state: (_EIGHT_TO_EIGHT,) * 7 for state in ("FL", "MD", "MS", "NJ", "OK")},
    "CT": ((time(9), time(20)),) * 7,
    "TX": ((time(9), time(21)),) * 6 + ((time(12), time(21)),),
    "RI": ((time(9), time(18)),) * 5 + ((time(10), time(17)),) * 2,
}

_STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Washington D.C.": "DC",
}  # fmt: skip
_STATE_CODES = set(_STATE_NAMES.values())


@dataclass(frozen=True)
class Opening:
    """``allowed``: a text may go now. Otherwise ``opens_at`` (aware, UTC) is the next moment it may, and
    ``reason`` says so in plain words. ``time_zone`` is the recipient's zone the decision used."""

    allowed: bool
    time_zone: str
    opens_at: datetime | None = None
    reason: str = ""


def _parse(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None


def number_time_zone(number: str) -> str | None:
    """The one IANA zone a number maps to, or None when it maps to none or to several (a toll-free or a
    non-geographic number)."""
    parsed = _parse(number)
    if parsed is None:
        return None
    zones = {z for z in number_timezones.time_zones_for_number(parsed) if z != "Etc/Unknown"}
    return zones.pop() if len(zones) == 1 else None


def us_state(number: str) -> str | None:
    """The US state of a number's area code ("NY"), or None (not a US number, or not a geographic one)."""
    parsed = _parse(number)
    if parsed is None or phonenumbers.region_code_for_number(parsed) != "US":
        return None
    place = geocoder.description_for_number(parsed, "en")
    if not place:
        return None
    if "," in place:
        code = place.rsplit(",", 1)[1].strip()
        return code if code in _STATE_CODES else None
    return _STATE_NAMES.get(place.strip())


RECORD_TIME_ZONE_FIELD = "time_zone"


def record_time_zone(record) -> str:
    """The zone a record says its person lives in: a ``time_zone`` field holding an IANA name
    ("America/Chicago"), standard or custom (``custom:time_zone``); "" when it has none or not a valid one."""
    if record is None:
        return ""
    value = getattr(record, RECORD_TIME_ZONE_FIELD, None)
    if not value:
        value = (getattr(record, "custom_fields", None) or {}).get(RECORD_TIME_ZONE_FIELD)
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return ""
    return value.strip()


def recipient_time_zone(number: str, *, record_time_zone: str = "", org_time_zone: str = "UTC") -> str:
    """The zone whose clock quiet hours are read on: the number's, else the record's, else the org's."""
    for candidate in (number_time_zone(number), record_time_zone, org_time_zone):
        if candidate:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return "UTC"


def window_for(day: date, *, policy: str = FEDERAL, state: str | None = None) -> Window:
    """The sending window of one local day."""
    if policy == STRICT and state in _STATE_WINDOWS:
        return _STATE_WINDOWS[state][day.weekday()]
    return _FEDERAL


def opening(
    now: datetime,
    number: str,
    *,
    policy: str = FEDERAL,
    record_time_zone: str = "",
    org_time_zone: str = "UTC",
) -> Opening:
    """May ``number`` be texted at ``now`` (aware)? If not, when next (see ``Opening``)."""
    zone_name = recipient_time_zone(number, record_time_zone=record_time_zone, org_time_zone=org_time_zone)
    zone = ZoneInfo(zone_name)
    state = us_state(number) if policy == STRICT else None
    local_now = now.astimezone(zone)
    for days_ahead in range(8):
        day = local_now.date() + timedelta(days=days_ahead)
        first, last = window_for(day, policy=policy, state=state)
        start = datetime.combine(day, first, tzinfo=zone)
        end = datetime.combine(day, last, tzinfo=zone)
        if days_ahead == 0 and start <= local_now < end:
            return Opening(True, zone_name)
        if local_now < start:
            when = f"{first.hour}:{first.minute:02d}"
            return Opening(
                False,
                zone_name,
                opens_at=start.astimezone(ZoneInfo("UTC")),
                reason=f"Queued — quiet hours until {when} their time",
            )
    raise AssertionError("every day has a window")  # pragma: no cover

"""The one phone-number normalizer. Every number we store or compare is E.164.

Numbers typed without a country code take the default country of the record type (a calling code such as
1 or 44, or a region such as "US"); the raw input is kept by callers for display.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "US"


class InvalidPhoneNumber(ValueError):
    """The input is not a valid, possible phone number. The message says what was wrong."""


def region_for(default_country: str | int | None) -> str:
    """Accept a region ("US"), a calling code (1, "1", "+1", "44") or None; return a region code."""
    if default_country is None or default_country == "":
        return DEFAULT_REGION
    text = str(default_country).strip().lstrip("+")
    if text.isdigit():
        region = phonenumbers.region_code_for_country_code(int(text))
        if region == phonenumbers.UNKNOWN_REGION:
            raise InvalidPhoneNumber(f"'+{text}' is not a known country calling code.")
        return region
    region = text.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidPhoneNumber(f"'{default_country}' is not a known country.")
    return region


def normalize_phone(raw: str, default_country: str | int | None = None) -> str:
    """Return ``raw`` as E.164 (``+14155550100``) or raise InvalidPhoneNumber."""
    if raw is None or not str(raw).strip():
        raise InvalidPhoneNumber("The phone number is empty.")
    text = str(raw).strip()
    if len(text) > 40:
        raise InvalidPhoneNumber(f"'{text[:40]}…' is too long to be a phone number.")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region_for(default_country))
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(f"'{raw}' is not a valid phone number.")
    if not phonenumbers.is_possible_number(parsed) or not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"'{raw}' is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalize_phone(raw: str, default_country: str | int | None = None) -> str | None:
    """Like normalize_phone, but None instead of an error (for search boxes and matching)."""
    try:
        return normalize_phone(raw, default_country)
    except InvalidPhoneNumber:
        return None


def format_for_display(e164: str) -> str:
    """``+14155550100`` → ``+1 415-555-0100`` (international format); unparseable input is returned as is."""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164

"""Campaign test fixtures: a campaign whose window is open all day, people to put in it."""

from __future__ import annotations

from campaigns.drip.services import add_recipients, do_create_campaign

# Numbers in New York, Chicago, Denver, Los Angeles … all US, all 555-01xx (fictional).
US_AREA_CODES = ["212", "312", "303", "213", "305", "617", "206", "404", "214", "602"]


def people(count: int, start: int = 0) -> list[str]:
    return [f"+1{US_AREA_CODES[i % len(US_AREA_CODES)]}555{(start + i) % 10000:04d}" for i in range(count)]


def campaign(org, actor, numbers, *, steps=None, **values):
    """A campaign open round the clock (the campaign's own UTC window, every day) unless told otherwise.
    The law's quiet hours still apply on the recipient's clock: tests that must send now use
    ``daytime_number``-like people or ``always_open``."""
    values.setdefault("name", "Spring sale")
    values.setdefault("window_clock", "campaign")
    values.setdefault("time_zone", "UTC")
    values.setdefault("window_start", "00:00")
    values.setdefault("window_end", "23:59")
    values.setdefault("brand_name", "Acme")
    return do_create_campaign(
        org,
        actor,
        senders=[n.pk for n in numbers],
        steps=steps or [{"body": "Hi {{first_name|default:'there'}}, Acme here."}],
        **values,
    )


def enroll(campaign_obj, phones, merge=None):
    return add_recipients(campaign_obj, [{"phone": p, "merge": merge or {}} for p in phones])


# North American area codes spread over the clock (Guam and Puerto Rico close most of the gap US zones
# leave), then mobile numbers in Berlin and India for the hours none of them is in daytime (mobiles: a CSV
# import refuses the landlines a numbering plan names).
ZONE_PREFIXES = [
    "+1212555",
    "+1312555",
    "+1303555",
    "+1213555",
    "+1907555",
    "+1808555",
    "+1671555",
    "+1787555",
]
FALLBACK_PREFIXES = ["+491510000", "+91987654"]


def daytime_people(count: int, start: int = 0) -> list[str]:
    """Numbers whose local time is now between 8:15 and 20:00 (inside the federal 8:00–21:00 with room for a
    test's minutes): a North American area code that fits, else mobiles in Berlin or India (same prefix for
    all)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from campaigns import quiet_hours

    now = datetime.now(ZoneInfo("UTC"))
    for prefix in [*ZONE_PREFIXES, *FALLBACK_PREFIXES]:
        zone = quiet_hours.number_time_zone(f"{prefix}0100")
        local = now.astimezone(ZoneInfo(zone)) if zone else None
        if local is not None and (8, 15) <= (local.hour, local.minute) < (20, 0):
            return [f"{prefix}{(start + i) % 10000:04d}" for i in range(count)]
    raise AssertionError("no prefix in daytime right now")

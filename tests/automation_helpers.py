"""Helpers of the automation tests: a number whose local time is inside the sending window right now (so a
test never waits for quiet hours), and a template."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from campaigns import quiet_hours
from templates_app.models import MessageTemplate

# Numbers in zones spread round the clock: at any instant one of them is between 9:00 and 19:00.
AROUND_THE_WORLD = [
    "+12125550100",  # New York
    "+442079460000",  # London
    "+911123456789",  # Delhi
    "+81312345678",  # Tokyo
    "+61212345678",  # Sydney
    "+18085550100",  # Honolulu
]


def daytime_number(at: datetime | None = None) -> str:
    now = at or datetime.now(ZoneInfo("UTC"))
    for number in AROUND_THE_WORLD:
        local = now.astimezone(ZoneInfo(quiet_hours.number_time_zone(number)))
        if 9 <= local.hour < 19:
            return number
    raise AssertionError("no daytime number: the list no longer covers the clock")


def night_number() -> str:
    now = datetime.now(ZoneInfo("UTC"))
    for number in AROUND_THE_WORLD:
        local = now.astimezone(ZoneInfo(quiet_hours.number_time_zone(number)))
        if local.hour < 6 or local.hour >= 22:
            return number
    raise AssertionError("no night-time number: the list no longer covers the clock")


def template(org, body="Hi {{first_name}}, welcome!", name="Welcome"):
    return MessageTemplate.objects.create(organization=org, name=name, body=body)

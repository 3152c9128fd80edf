"""Quiet hours by the recipient's own clock: time zone from the number, federal and strict state windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns import quiet_hours

NEW_YORK = "+12125550100"
LOS_ANGELES = "+13105550100"
HONOLULU = "+18085550100"
TOLL_FREE = "+18885550100"


def test_one_instant_is_open_in_new_york_and_quiet_in_los_angeles_and_honolulu():
    # 15:30 UTC on a January Tuesday: 10:30 in New York, 7:30 in Los Angeles, 5:30 in Honolulu.
    now = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)
    ny = quiet_hours.opening(now, NEW_YORK)
    la = quiet_hours.opening(now, LOS_ANGELES)
    hi = quiet_hours.opening(now, HONOLULU)
    assert ny.allowed and ny.time_zone == "America/New_York"
    assert not la.allowed and la.opens_at == datetime(2026, 1, 13, 16, 0, tzinfo=UTC)
    assert la.reason == "Queued — quiet hours until 8:00 their time"
    assert not hi.allowed and hi.opens_at == datetime(2026, 1, 13, 18, 0, tzinfo=UTC)


def test_after_nine_in_the_evening_waits_for_eight_the_next_morning():
    now = datetime(2026, 1, 14, 2, 30, tzinfo=UTC)  # 21:30 in New York
    gate = quiet_hours.opening(now, NEW_YORK)
    assert not gate.allowed
    assert gate.opens_at == datetime(2026, 1, 14, 13, 0, tzinfo=UTC)  # 8:00 EST


def test_a_number_without_one_time_zone_uses_the_organizations():
    now = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)
    assert quiet_hours.number_time_zone(TOLL_FREE) is None
    assert quiet_hours.opening(now, TOLL_FREE, org_time_zone="Europe/London").time_zone == "Europe/London"
    assert not quiet_hours.opening(now, TOLL_FREE, org_time_zone="Pacific/Honolulu").allowed
    assert quiet_hours.opening(now, "+447700900123", org_time_zone="Europe/London").allowed


@pytest.mark.parametrize(
    "number,state",
    [("+13055550100", "FL"), ("+12035550100", "CT"), ("+15125550100", "TX"), ("+14015550100", "RI")],
)
def test_the_state_comes_from_the_area_code(number, state):
    assert quiet_hours.us_state(number) == state


def test_strict_florida_closes_at_eight_in_the_evening_but_federal_does_not():
    now = datetime(2026, 1, 14, 1, 30, tzinfo=UTC)  # 20:30 in Miami
    assert quiet_hours.opening(now, "+13055550100").allowed
    strict = quiet_hours.opening(now, "+13055550100", policy=quiet_hours.STRICT)
    assert not strict.allowed and strict.opens_at == datetime(2026, 1, 14, 13, 0, tzinfo=UTC)


def test_strict_texas_opens_at_noon_on_sunday():
    now = datetime(2026, 1, 18, 16, 0, tzinfo=UTC)  # Sunday 10:00 in Austin
    gate = quiet_hours.opening(now, "+15125550100", policy=quiet_hours.STRICT)
    assert not gate.allowed and gate.opens_at == datetime(2026, 1, 18, 18, 0, tzinfo=UTC)
    monday = datetime(2026, 1, 19, 16, 0, tzinfo=UTC)  # Monday 10:00
    assert quiet_hours.opening(monday, "+15125550100", policy=quiet_hours.STRICT).allowed


def test_strict_rhode_island_weekends_run_ten_to_five():
    saturday_six_pm = datetime(2026, 1, 17, 23, 0, tzinfo=UTC)  # 18:00 EST
    gate = quiet_hours.opening(saturday_six_pm, "+14015550100", policy=quiet_hours.STRICT)
    assert not gate.allowed
    assert gate.opens_at == datetime(2026, 1, 18, 15, 0, tzinfo=UTC)  # Sunday 10:00 EST
    weekday_six_pm = datetime(2026, 1, 14, 23, 0, tzinfo=UTC)  # Wednesday 18:00: weekdays close at 18:00
    assert not quiet_hours.opening(weekday_six_pm, "+14015550100", policy=quiet_hours.STRICT).allowed


def test_strict_connecticut_opens_at_nine():
    now = datetime(2026, 1, 14, 13, 30, tzinfo=UTC)  # 8:30 in Hartford
    assert quiet_hours.opening(now, "+12035550100").allowed
    assert not quiet_hours.opening(now, "+12035550100", policy=quiet_hours.STRICT).allowed


def test_the_opening_after_a_daylight_saving_change_is_eight_local_time():
    # Saturday 7 March 2026, 22:00 in New York; clocks spring forward on Sunday the 8th.
    now = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
    gate = quiet_hours.opening(now, NEW_YORK)
    assert gate.opens_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 8:00 EDT, not 13:00 UTC


class _Record:
    def __init__(self, custom_fields=None, **fields):
        self.custom_fields = custom_fields or {}
        self.__dict__.update(fields)


def test_a_records_time_zone_field_is_used_when_the_number_tells_none():
    now = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)  # 9:30 in Chicago, 5:30 in Honolulu
    chicago = quiet_hours.record_time_zone(_Record({"time_zone": "America/Chicago"}))
    assert chicago == "America/Chicago"
    assert quiet_hours.record_time_zone(_Record(time_zone="Pacific/Honolulu")) == "Pacific/Honolulu"
    gate = quiet_hours.opening(now, TOLL_FREE, record_time_zone=chicago, org_time_zone="Pacific/Honolulu")
    assert gate.allowed and gate.time_zone == "America/Chicago"
    # The number's own zone still comes first; the organization's is the last resort.
    assert (
        quiet_hours.opening(now, NEW_YORK, record_time_zone="Pacific/Honolulu").time_zone
        == "America/New_York"
    )
    assert not quiet_hours.opening(
        now, TOLL_FREE, record_time_zone="", org_time_zone="Pacific/Honolulu"
    ).allowed


@pytest.mark.parametrize("value", ["", "   ", "Mars/Olympus", "../etc", 42, None])
def test_a_missing_or_invalid_record_time_zone_is_ignored(value):
    assert quiet_hours.record_time_zone(_Record({"time_zone": value})) == ""
    assert quiet_hours.record_time_zone(None) == ""

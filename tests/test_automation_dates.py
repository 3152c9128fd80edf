"""Date triggers: "1 day before appointment_at, at 10:00 their time" fires at the right instant, across a
daylight-saving change, once, and never for dates that passed before the rule was switched on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.automations import engine
from campaigns.automations.triggers import scan_time_triggers
from campaigns.models import Automation, Enrollment
from campaigns.services import do_create_automation, do_set_automation_status
from crm.models import Lead
from tests.automation_helpers import template

NEW_YORK = ZoneInfo("America/New_York")


def test_a_day_before_at_ten_their_time_across_the_spring_change():
    # Appointment on Monday 9 March 2026; clocks moved forward on Sunday the 8th.
    fire = engine._fire_instant(date(2026, 3, 9), timedelta(days=-1), "10:00", NEW_YORK)
    assert fire == datetime(2026, 3, 8, 10, 0, tzinfo=NEW_YORK)
    assert fire.astimezone(UTC) == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)  # EDT: UTC-4


def test_a_datetime_field_keeps_its_wall_clock_across_the_autumn_change():
    appointment = datetime(2026, 11, 2, 15, 0, tzinfo=NEW_YORK)  # Monday after the change back (1 Nov)
    fire = engine._fire_instant(appointment, timedelta(days=-2), None, NEW_YORK)
    assert fire.astimezone(NEW_YORK).hour == 15
    assert fire.astimezone(UTC) == datetime(2026, 10, 31, 19, 0, tzinfo=UTC)  # still EDT on the 31st


@pytest.mark.django_db
def test_the_scan_enrolls_once_and_not_for_dates_already_past(org_a, alice):
    reminder = template(org_a, "See you tomorrow, {{first_name}}!", "Reminder")
    automation = do_create_automation(
        org_a,
        alice,
        name="Reminder",
        trigger={
            "type": "date_reached",
            "record_type": "lead",
            "field": "appointment_at",
            "offset_minutes": -24 * 60,
            "at_time": "10:00",
        },
        steps=[{"type": "wait", "until": "delay", "minutes": 60}],
    )
    start = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    Automation.objects.filter(pk=automation.pk).update(scanned_until=start)
    Lead.objects.create(
        organization=org_a,
        first_name="Old",
        mobile_phone="+12125550100",
        custom_fields={"appointment_at": "2026-03-01"},
    )
    Lead.objects.create(
        organization=org_a,
        first_name="Sam",
        mobile_phone="+12125550101",
        custom_fields={"appointment_at": "2026-03-09"},
    )
    assert reminder.pk
    assert scan_time_triggers(datetime(2026, 3, 8, 13, 59, tzinfo=UTC)) == {"enrolled": 0}
    assert scan_time_triggers(datetime(2026, 3, 8, 14, 1, tzinfo=UTC)) == {"enrolled": 1}
    assert scan_time_triggers(datetime(2026, 3, 8, 15, 0, tzinfo=UTC)) == {"enrolled": 0}
    (enrollment,) = Enrollment.objects.filter(automation=automation)
    assert enrollment.trigger_key == "date:appointment_at:2026-03-09"

"""Every trigger type through a real Celery worker (production mode): CRM events (created, field changed to a
value or any change, owner changed, status changed), a keyword texted to one number, the periodic scan for a
date across a daylight-saving change and for a conversation gone quiet; the re-enrollment window and the
loop guard; quiet hours by each recipient's clock, federal and strict, at one instant.

The steps mostly notify (an in-app note, no clock involved) so each test proves what fired and when; the scan
runs in the worker as of a given instant (the task's ``at``), the steps at the worker's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.automations import engine
from campaigns.models import Automation, Enrollment, StepRun
from campaigns.services import do_create_automation, do_set_automation_status
from crm.models import Lead
from crm.services import do_create_record, do_update_record
from messaging.models import Message, Notification
from quicksend.queue import enqueue
from tests import factories_send
from tests.automation_helpers import daytime_number, template
from tests.factories_messaging import store_inbound
from tests.plugins.servers import wait_until

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db(transaction=True)


def automation(org, admin, name, trigger, steps=None, **extra):
    steps = steps or [{"type": "notify", "user": admin.pk, "text": f"{name} fired"}]
    made = do_create_automation(org, admin, name=name, trigger=trigger, steps=steps, **extra)
    return do_set_automation_status(made, admin, Automation.Status.ACTIVE)


def notes(admin) -> list[str]:
    return sorted(
        Notification.objects.filter(recipient=admin, kind="automation").values_list("text", flat=True)
    )


def settled(org) -> bool:
    """No enrollment of the organization is due to run any more (all completed, stopped or waiting later)."""
    busy = Enrollment.objects.filter(organization=org, status="waiting", wake_at__lte=timezone.now())
    return Enrollment.objects.filter(organization=org).exists() and not busy.exists()


def wait_for(predicate, worker, what: str) -> None:
    wait_until(predicate, timeout=60, interval=0.1, message=f"{what}\n{worker.log()[-3000:]}")


def test_each_record_trigger_fires_in_the_worker(org_a, alice, aaron, celery_worker_process):
    automation(org_a, alice, "Created", {"type": "record_created", "record_type": "lead"})
    automation(
        org_a,
        alice,
        "Title is Hot",
        {"type": "field_changed", "record_type": "lead", "field": "title", "to": "hot"},
    )
    automation(
        org_a,
        alice,
        "Title is Cold",
        {"type": "field_changed", "record_type": "lead", "field": "title", "to": "cold"},
    )
    automation(
        org_a, alice, "Company changed", {"type": "field_changed", "record_type": "lead", "field": "company"}
    )
    automation(org_a, alice, "Owner changed", {"type": "owner_changed", "record_type": "lead"})
    automation(
        org_a, alice, "Qualified", {"type": "status_changed", "record_type": "lead", "to": "qualified"}
    )
    automation(org_a, alice, "Contact created", {"type": "record_created", "record_type": "contact"})
    lead = do_create_record(org_a, alice, "lead", {"first_name": "Kim", "mobile_phone": daytime_number()})
    wait_for(lambda: notes(alice) == ["Created: Created fired"], celery_worker_process, "no created note")
    do_update_record(
        Lead.objects.get(pk=lead.pk),
        alice,
        {"title": "Hot", "company": "Acme Homes", "owner": aaron, "status": "qualified"},
    )
    expected = sorted(
        f"{name}: {name} fired"
        for name in ("Created", "Title is Hot", "Company changed", "Owner changed", "Qualified")
    )
    wait_for(lambda: notes(alice) == expected, celery_worker_process, f"notes were {notes(alice)}")
    wait_for(lambda: settled(org_a), celery_worker_process, "enrollments still running")
    assert not Enrollment.objects.filter(automation__name__in=["Title is Cold", "Contact created"]).exists()
    assert set(Enrollment.objects.values_list("status", flat=True)) == {"completed"}


def test_a_keyword_texted_to_that_number_enrolls_in_the_worker(org_a, alice, line, celery_worker_process):
    keyword = automation(
        org_a, alice, "House", {"type": "inbound_keyword", "keyword": "house", "number": line.number.pk}
    )
    texter = daytime_number()
    store_inbound(line.number, texter, "tell me more")
    store_inbound(line.number, texter, " House ")
    wait_for(lambda: notes(alice) == ["House: House fired"], celery_worker_process, "no keyword note")
    wait_for(lambda: settled(org_a), celery_worker_process, "enrollment still running")
    (enrollment,) = Enrollment.objects.filter(automation=keyword)
    assert enrollment.phone == texter and enrollment.status == "completed"


def scan_in_worker(automation_row, at: datetime, worker) -> None:
    enqueue("campaigns.tasks.scan_time_triggers", at=at.isoformat())
    wait_for(
        lambda: Automation.objects.get(pk=automation_row.pk).scanned_until == at,
        worker,
        f"the scan as of {at} did not run",
    )


def test_a_day_before_at_ten_their_time_fires_across_the_spring_change_in_the_worker(
    org_a, alice, celery_worker_process
):
    # New York springs forward on Sunday 8 March 2026: 10:00 that morning is 14:00 UTC (15:00 the day before).
    reminder = automation(
        org_a,
        alice,
        "Reminder",
        {
            "type": "date_reached",
            "record_type": "lead",
            "field": "appointment_at",
            "offset_minutes": -1440,
            "at_time": "10:00",
        },
    )
    Automation.objects.filter(pk=reminder.pk).update(scanned_until=datetime(2026, 3, 7, 12, tzinfo=UTC))
    Lead.objects.create(
        organization=org_a,
        first_name="Sam",
        mobile_phone="+12125550101",
        custom_fields={"appointment_at": "2026-03-09"},
    )
    Lead.objects.create(
        organization=org_a,
        first_name="Old",
        mobile_phone="+12125550102",
        custom_fields={"appointment_at": "2026-03-01"},
    )
    scan_in_worker(reminder, datetime(2026, 3, 8, 13, 59, tzinfo=UTC), celery_worker_process)
    assert not Enrollment.objects.filter(automation=reminder).exists()
    scan_in_worker(reminder, datetime(2026, 3, 8, 14, 1, tzinfo=UTC), celery_worker_process)
    wait_for(lambda: notes(alice) == ["Reminder: Reminder fired"], celery_worker_process, "no reminder")
    scan_in_worker(reminder, datetime(2026, 3, 8, 16, tzinfo=UTC), celery_worker_process)
    (enrollment,) = Enrollment.objects.filter(automation=reminder)
    assert enrollment.trigger_key == "date:appointment_at:2026-03-09"


def test_a_conversation_gone_quiet_fires_once_in_the_worker(org_a, alice, line, celery_worker_process):
    quiet = automation(
        org_a, alice, "Nudge", {"type": "conversation_idle", "hours": 4, "waiting_on": "agent"}
    )
    store_inbound(line.number, daytime_number(), "Hello?")
    now = timezone.now()
    scan_in_worker(quiet, now + timedelta(hours=1), celery_worker_process)
    assert not Enrollment.objects.filter(automation=quiet).exists()
    scan_in_worker(quiet, now + timedelta(hours=5), celery_worker_process)
    scan_in_worker(quiet, now + timedelta(hours=6), celery_worker_process)
    assert Enrollment.objects.filter(automation=quiet).count() == 1


def test_the_window_and_the_loop_guard_hold_in_the_worker(org_a, alice, celery_worker_process):
    again = automation(
        org_a,
        alice,
        "Qualified",
        {"type": "status_changed", "record_type": "lead", "to": "qualified"},
        reenroll=True,
    )
    # Two automations that set the field the other waits for: each run starts the other, until the guard
    # pauses one of them.
    ping, pong = (
        automation(
            org_a,
            alice,
            name,
            {"type": "field_changed", "record_type": "lead", "field": "title", "to": name},
            steps=[{"type": "update_field", "field": "title", "value": other}],
            reenroll=True,
            reenroll_window_hours=0,
        )
        for name, other in (("ping", "pong"), ("pong", "ping"))
    )
    lead = Lead.objects.create(organization=org_a, first_name="Kim", mobile_phone=daytime_number())
    # Qualified (enrolls), contacted (not the status it waits for), qualified again (within the window).
    for status, enrollments in (("qualified", 1), ("contacted", 1), ("qualified", 2)):
        do_update_record(Lead.objects.get(pk=lead.pk), alice, {"status": status})
        wait_for(
            lambda n=enrollments: Enrollment.objects.filter(automation=again).count() == n and settled(org_a),
            celery_worker_process,
            f"not {enrollments} enrollment(s)",
        )
    assert notes(alice) == ["Qualified: Qualified fired"]
    skipped = StepRun.objects.filter(automation=again, step_index=-1, result="skipped").values_list(
        "detail", flat=True
    )
    assert list(skipped) == ["Already texted within 24 hours"]

    do_update_record(Lead.objects.get(pk=lead.pk), alice, {"title": "ping"})
    wait_for(
        lambda: Automation.objects.filter(pk__in=[ping.pk, pong.pk], status="paused").exists(),
        celery_worker_process,
        "the loop ran on",
    )
    (paused,) = Automation.objects.filter(pk__in=[ping.pk, pong.pk], status="paused")
    assert "loop" in paused.paused_reason
    assert Enrollment.objects.filter(automation=paused).count() == engine.LOOP_LIMIT


# Numbers of one state each (area code) and their zones: the oracle below is written from the rules, not
# from campaigns.quiet_hours.
PEOPLE = {
    "+12125550100": ("America/New_York", None),
    "+13105550100": ("America/Los_Angeles", None),
    "+18085550100": ("Pacific/Honolulu", None),
    "+13055550100": ("America/New_York", "FL"),
    "+12145550100": ("America/Chicago", "TX"),
    "+14015550100": ("America/New_York", "RI"),
    "+12035550100": ("America/New_York", "CT"),
}


def open_now(number: str, policy: str, at: datetime) -> bool:
    zone, state = PEOPLE[number]
    local = at.astimezone(ZoneInfo(zone))
    hour, weekday = local.hour + local.minute / 60, local.weekday()
    start, end = 8, 21
    if policy == "strict" and state == "FL":
        end = 20
    if policy == "strict" and state == "CT":
        start, end = 9, 20
    if policy == "strict" and state == "TX":
        start = 12 if weekday == 6 else 9
    if policy == "strict" and state == "RI":
        start, end = (10, 17) if weekday >= 5 else (9, 18)
    return start <= hour < end


def close_to_a_boundary(at: datetime) -> bool:
    # One step's clock and the oracle's could straddle the hour: such a minute is not a fair instant.
    return any(at.astimezone(ZoneInfo(zone)).minute in (59, 0) for zone, _ in PEOPLE.values())


@pytest.mark.parametrize("policy", ["federal", "strict"])
def test_quiet_hours_hold_each_recipient_by_their_own_clock_in_the_worker(
    org_a, alice, line, celery_worker_process, policy
):
    hello = template(org_a, "Hello {{first_name}}")
    texting = automation(
        org_a,
        alice,
        "Hello",
        {"type": "record_created", "record_type": "lead"},
        steps=[{"type": "send_template", "template": hello.pk}],
        quiet_hours=policy,
    )
    at = timezone.now()
    if close_to_a_boundary(at):
        at += timedelta(minutes=2)
        wait_until(lambda: timezone.now() >= at, timeout=150, interval=1)
    for i, number in enumerate(PEOPLE):
        do_create_record(org_a, alice, "lead", {"first_name": f"P{i}", "mobile_phone": number})
    wait_for(
        lambda: Enrollment.objects.filter(automation=texting).count() == len(PEOPLE) and settled(org_a),
        celery_worker_process,
        "enrollments still running",
    )
    for enrollment in Enrollment.objects.filter(automation=texting):
        sent = Message.objects.filter(organization=org_a, to_number=enrollment.phone).exists()
        assert sent == open_now(enrollment.phone, policy, enrollment.created_at), (
            enrollment.phone,
            enrollment.reason,
        )
        if not sent:
            assert enrollment.reason.startswith("Queued — quiet hours until"), enrollment.reason
            assert enrollment.wake_at > enrollment.created_at

"""Automations: triggers enroll records, steps send through the one send service (sandbox), waits are stored
rows, replies branch, and the guards (conditions, re-enrollment window, loop guard, opt-out, quiet hours)
write their reasons to the run log. Tasks run inline here; tests/test_automations_worker.py uses a worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import quiet_hours
from campaigns.automations import engine
from campaigns.models import Automation, Enrollment, StepRun
from campaigns.services import do_create_automation, do_set_automation_status
from crm.models import Lead
from crm.services import do_create_record, do_update_record
from messaging.models import Message
from messaging.services.consent import do_change_consent
from tests import factories_send
from tests.automation_helpers import daytime_number, night_number, template
from tests.factories_messaging import store_inbound

line = factories_send.line
fast_rates = factories_send.fast_rates
inline_tasks = factories_send.inline_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def welcome_flow(org, admin, **extra):
    welcome = template(org, "Hi {{first_name}}, thanks for visiting our open house!", "Welcome")
    follow_up = template(org, "Hi {{first_name}}, any questions about the house?", "Follow-up")
    automation = do_create_automation(
        org,
        admin,
        name="Open house",
        trigger={"type": "record_created", "record_type": "lead"},
        conditions={"match": "all", "rules": [{"field": "source", "op": "equals", "value": "open house"}]},
        steps=[
            {"type": "send_template", "template": welcome.pk},
            {"type": "wait", "until": "reply", "minutes": 2 * 24 * 60},
            {"type": "branch", "if_replied": "stop", "if_not_replied": "continue"},
            {"type": "send_template", "template": follow_up.pk},
        ],
        **extra,
    )
    return do_set_automation_status(automation, admin, Automation.Status.ACTIVE)


def new_lead(org, admin, number, source="open house", first_name="Dana"):
    return do_create_record(
        org,
        admin,
        "lead",
        {
            "first_name": first_name,
            "last_name": "Buyer",
            "mobile_phone": number,
            "custom_fields": {"source": source},
        },
    )


def run_log(automation) -> list[tuple[int, str, str]]:
    return [
        (r.step_index, r.result, r.detail)
        for r in StepRun.objects.filter(automation=automation).order_by("id")
    ]


def sent_bodies(org) -> list[str]:
    return list(
        Message.objects.filter(organization=org, direction="outbound")
        .order_by("id")
        .values_list("body", flat=True)
    )


def test_a_new_open_house_lead_is_welcomed_then_followed_up_when_silent(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    lead = new_lead(org_a, alice, daytime_number())
    assert sent_bodies(org_a) == ["Hi Dana, thanks for visiting our open house!"]
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    assert enrollment.status == Enrollment.Status.WAITING and enrollment.reason == "wait:reply"
    message = Message.objects.get(organization=org_a, direction="outbound")
    assert (
        message.source == Message.Source.AUTOMATION
        and message.idempotency_key == f"automation-{enrollment.pk}-0"
    )
    # The thread names the automation as the sender ("Automation: Open house").
    assert message.source_label == "Open house"

    # Two days pass without a reply: the scheduler wakes it and the follow-up goes.
    later = timezone.now() + timedelta(days=2, minutes=1)
    assert engine.claim_due(later) == [enrollment.pk]
    engine.advance(enrollment.pk, now=later)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED
    assert sent_bodies(org_a)[-1] == "Hi Dana, any questions about the house?"
    results = [r for _i, r, _d in run_log(automation)]
    assert results == ["done", "sent", "waiting", "done", "done", "sent", "done"]


def test_a_reply_ends_the_wait_at_once_and_the_branch_stops(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    number = daytime_number()
    lead = new_lead(org_a, alice, number)
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    store_inbound(line.number, number, "Yes, I loved it!")
    enrollment.refresh_from_db()
    assert enrollment.replied_at is not None and enrollment.wake_at <= timezone.now()
    assert engine.claim_due() == [enrollment.pk]
    engine.advance(enrollment.pk)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED and enrollment.reason == "They replied: stopped"
    assert len(sent_bodies(org_a)) == 1


def test_a_lead_that_fails_the_condition_is_logged_and_not_texted(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    new_lead(org_a, alice, daytime_number(), source="website")
    assert sent_bodies(org_a) == []
    assert run_log(automation) == [(-1, "skipped", "Condition false")]


def test_quiet_hours_hold_the_text_and_say_until_when(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    lead = new_lead(org_a, alice, night_number())
    assert sent_bodies(org_a) == []
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    assert enrollment.status == Enrollment.Status.WAITING
    assert enrollment.reason.startswith("Queued — quiet hours until 8:00 their time")
    assert enrollment.wake_at > timezone.now()


def test_quiet_hours_read_the_records_own_time_zone_when_the_number_has_none(
    org_a, alice, line, inline_tasks
):
    """A toll-free number has no zone of its own: this lead's ``time_zone`` field decides, not the org's."""
    org_a.time_zone = quiet_hours.number_time_zone(daytime_number())  # the org's clock would let it through
    org_a.save(update_fields=["time_zone"])
    automation = welcome_flow(org_a, alice)
    night_zone = quiet_hours.number_time_zone(night_number())
    lead = do_create_record(
        org_a,
        alice,
        "lead",
        {
            "first_name": "Toll",
            "last_name": "Free",
            "mobile_phone": "+18885550142",
            "custom_fields": {"source": "open house", "time_zone": night_zone},
        },
    )
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    assert sent_bodies(org_a) == []
    assert enrollment.status == Enrollment.Status.WAITING
    assert enrollment.reason.startswith("Queued — quiet hours until 8:00 their time")


def test_an_opted_out_person_is_never_texted_and_the_log_says_why(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    number = daytime_number()
    do_change_consent(org_a, number, "opt_out", "keyword", keyword="STOP")
    lead = new_lead(org_a, alice, number)
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    assert enrollment.status == Enrollment.Status.STOPPED and "opted out" in enrollment.reason
    assert sent_bodies(org_a) == []


def test_the_same_record_is_not_texted_twice_within_the_window(org_a, alice, line, inline_tasks):
    greeting = template(org_a, "Thanks, {{first_name}}!", "Thanks")
    automation = do_create_automation(
        org_a,
        alice,
        name="Qualified",
        trigger={"type": "status_changed", "record_type": "lead", "to": "qualified"},
        steps=[{"type": "send_template", "template": greeting.pk}],
        reenroll=True,
    )
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    lead = new_lead(org_a, alice, daytime_number(), source="referral")
    do_update_record(lead, alice, {"status": "qualified"})
    do_update_record(Lead.objects.get(pk=lead.pk), alice, {"status": "contacted"})
    do_update_record(Lead.objects.get(pk=lead.pk), alice, {"status": "qualified"})
    assert sent_bodies(org_a) == ["Thanks, Dana!"]
    assert run_log(automation)[-1] == (-1, "skipped", "Already texted within 24 hours")


def test_an_automation_that_retriggers_itself_pauses_with_a_reason(org_a, alice, line, inline_tasks):
    automation = do_create_automation(
        org_a,
        alice,
        name="Loop",
        trigger={"type": "field_changed", "record_type": "lead", "field": "title"},
        steps=[{"type": "update_field", "field": "title", "value": "Touched"}],
        reenroll=True,
        reenroll_window_hours=0,
    )
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    lead = new_lead(org_a, alice, daytime_number())
    do_update_record(lead, alice, {"title": "Buyer"})
    for i in range(10):
        do_update_record(Lead.objects.get(pk=lead.pk), alice, {"title": f"Buyer {i}"})
    automation.refresh_from_db()
    assert automation.status == Automation.Status.PAUSED and "loop" in automation.paused_reason
    assert Enrollment.objects.filter(automation=automation).count() == engine.LOOP_LIMIT


def test_a_step_runs_once_when_its_task_is_delivered_twice(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    lead = new_lead(org_a, alice, daytime_number())
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    # Back to the first step as if the worker died after sending but before the step was recorded.
    Enrollment.objects.filter(pk=enrollment.pk).update(
        status="waiting", step_index=0, reason="", wake_at=timezone.now()
    )
    engine.advance(enrollment.pk)
    assert Message.objects.filter(organization=org_a, direction="outbound").count() == 1


def test_a_paused_automation_keeps_its_people_waiting_and_resumes(org_a, alice, line, inline_tasks):
    automation = welcome_flow(org_a, alice)
    lead = new_lead(org_a, alice, daytime_number())
    enrollment = Enrollment.objects.get(automation=automation, record_id=lead.pk)
    do_set_automation_status(automation, alice, Automation.Status.PAUSED)
    later = timezone.now() + timedelta(days=3)
    assert engine.claim_due(later) == []
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    assert engine.claim_due(later) == [enrollment.pk]


def test_dry_run_shows_the_rendered_text_and_sends_nothing(org_a, alice, line):
    automation = welcome_flow(org_a, alice)
    lead = Lead.objects.create(
        organization=org_a,
        first_name="Pat",
        mobile_phone=daytime_number(),
        custom_fields={"source": "open house"},
    )
    preview = engine.dry_run(automation, lead)
    assert preview.enrolls
    assert preview.steps[0]["text"] == "Hi Pat, thanks for visiting our open house!"
    assert preview.steps[0]["would"] == "Send now"
    assert sent_bodies(org_a) == [] and not Enrollment.objects.exists()


def test_a_keyword_texted_to_our_number_enrolls_the_texter(org_a, alice, line, inline_tasks):
    info = template(org_a, "Here is the brochure: example.test/house", "Brochure")
    automation = do_create_automation(
        org_a,
        alice,
        name="Brochure",
        trigger={"type": "inbound_keyword", "keyword": "house", "number": line.number.pk},
        steps=[{"type": "send_template", "template": info.pk}],
    )
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    number = daytime_number()
    store_inbound(line.number, number, "tell me more")
    store_inbound(line.number, number, " House ")
    assert sent_bodies(org_a) == ["Here is the brochure: example.test/house"]
    assert Enrollment.objects.get(automation=automation).phone == number


def test_a_conversation_gone_quiet_enrolls_once(org_a, alice, line, inline_tasks):
    nudge = template(org_a, "Still there?", "Nudge")
    automation = do_create_automation(
        org_a,
        alice,
        name="Nudge",
        trigger={"type": "conversation_idle", "hours": 4, "waiting_on": "agent"},
        steps=[{"type": "send_template", "template": nudge.pk}],
    )
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    later = timezone.now() + timedelta(hours=5)
    number = daytime_number(at=later)
    store_inbound(line.number, number, "Hello?")
    from campaigns.automations.triggers import scan_time_triggers

    assert scan_time_triggers(timezone.now() + timedelta(hours=1)) == {"enrolled": 0}
    assert scan_time_triggers(later) == {"enrolled": 1}
    assert scan_time_triggers(timezone.now() + timedelta(hours=6)) == {"enrolled": 0}
    # The scan ran with a clock five hours ahead; the enrollment is due at that moment.
    engine.advance(Enrollment.objects.get(automation=automation).pk, now=later)
    assert sent_bodies(org_a) == ["Still there?"]


def test_a_batch_of_texts_ends_a_wait_and_enrolls_by_keyword_once_however_often_it_is_handled(
    org_a, alice, line, inline_tasks, monkeypatch
):
    """Inbound texts arrive in batches: one task handles the batch's replies and keywords set-based."""
    from campaigns.automations import triggers
    from quicksend import queue

    welcome_flow(org_a, alice)
    brochure = do_create_automation(
        org_a,
        alice,
        name="Brochure",
        trigger={"type": "inbound_keyword", "keyword": "house", "number": line.number.pk},
        steps=[{"type": "send_template", "template": template(org_a, "The brochure", "Brochure").pk}],
    )
    do_set_automation_status(brochure, alice, Automation.Status.ACTIVE)
    replier, asker = daytime_number(), "+12125550177"
    lead = new_lead(org_a, alice, replier)
    waiting = Enrollment.objects.get(record_id=lead.pk)
    assert waiting.status == Enrollment.Status.WAITING and waiting.replied_at is None
    monkeypatch.setattr(queue, "enqueue_item", lambda *args: None)  # stored, not yet handed to the task
    texts = [store_inbound(line.number, replier, "Yes, loved it"), store_inbound(line.number, asker, "HOUSE")]
    for _ in range(2):
        result = triggers.on_inbound_texts([t.pk for t in texts])
        assert result["texts"] == 2
    waiting.refresh_from_db()
    assert waiting.replied_at is not None and waiting.wake_at <= timezone.now()
    assert Enrollment.objects.filter(automation=brochure, phone=asker).count() == 1

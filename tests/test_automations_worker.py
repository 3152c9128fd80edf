"""Automations through real processes: a Celery worker runs a record-created automation end to end, and a
worker killed in the middle of a send step leaves nothing behind, so the step runs once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from campaigns.models import Automation, Enrollment
from campaigns.services import do_create_automation, do_set_automation_status
from crm.models import Lead
from crm.services import do_create_record
from messaging.models import Message
from tests import factories_send
from tests.automation_helpers import daytime_number, template
from tests.factories_send import FAST_RATES
from tests.plugins.servers import ROOT, server_env, wait_until

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db(transaction=True)

# Runs one enrollment's next step in a child process whose worker dies (os._exit: no cleanup) right after
# the send service stored the message, before the step's transaction commits.
CRASHING_STEP = """
import os, sys
import django

django.setup()
from campaigns.automations import engine

real_send = engine.do_send_message


def send_then_die(*args, **kwargs):
    message = real_send(*args, **kwargs)
    print("stored", message.pk, flush=True)
    os._exit(17)


engine.do_send_message = send_then_die
engine.advance(int(sys.argv[1]))
print("not killed", flush=True)
"""


@pytest.fixture
def child_env(twilio_sandbox, monkeypatch):
    extra = {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(FAST_RATES),
        "DJANGO_SETTINGS_MODULE": "quicksend.settings",
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return server_env(extra)


def _automation(org, admin):
    welcome = template(org, "Welcome, {{first_name}}!")
    automation = do_create_automation(
        org,
        admin,
        name="Welcome",
        trigger={"type": "record_created", "record_type": "lead"},
        steps=[{"type": "send_template", "template": welcome.pk}],
    )
    return do_set_automation_status(automation, admin, Automation.Status.ACTIVE)


def test_a_real_worker_texts_a_new_lead(org_a, alice, line, twilio_sandbox, child_env, celery_worker_process):
    automation = _automation(org_a, alice)
    do_create_record(org_a, alice, "lead", {"first_name": "Kim", "mobile_phone": daytime_number()})
    wait_until(
        lambda: Message.objects.filter(organization=org_a, direction="outbound").exclude(sid=None).exists(),
        timeout=30,
        message=f"no text was sent\n{celery_worker_process.log()[-3000:]}",
    )
    message = Message.objects.get(organization=org_a, direction="outbound")
    assert message.body == "Welcome, Kim!" and message.source == "automation"
    assert [m["sid"] for m in twilio_sandbox.messages(line.sid)] == [message.sid]
    enrollment = Enrollment.objects.get(automation=automation)
    assert enrollment.status == Enrollment.Status.COMPLETED


def test_a_worker_killed_mid_step_runs_the_step_once(org_a, alice, line, child_env, monkeypatch):
    from campaigns import tasks
    from campaigns.automations.engine import advance, enroll

    automation = _automation(org_a, alice)
    monkeypatch.setattr(tasks.advance_enrollment, "delay", lambda *args, **kwargs: None)
    lead = Lead.objects.create(organization=org_a, first_name="Kim", mobile_phone=daytime_number())
    enrollment = enroll(automation, record=lead, trigger_key="created")
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_STEP, str(enrollment.pk)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 17, crashed.stdout + crashed.stderr
    assert "stored" in crashed.stdout
    assert not Message.objects.filter(organization=org_a).exists()  # rolled back with the step
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.WAITING and enrollment.step_index == 0

    monkeypatch.setattr("messaging.services.hand_over.queue_hand_over", lambda *a, **k: None)
    assert advance(enrollment.pk) == Enrollment.Status.COMPLETED
    assert advance(enrollment.pk) == Enrollment.Status.COMPLETED
    assert Message.objects.filter(organization=org_a, direction="outbound").count() == 1


def test_workers_advancing_enrollments_of_one_automation_do_not_lock_each_other_out(org_a, alice, line):
    import threading

    from django.db import connection, connections, transaction

    from campaigns.automations.engine import advance, enroll

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (CI runs it)")
    automation = _automation(org_a, alice)
    lead = Lead.objects.create(organization=org_a, first_name="Kim", mobile_phone=daytime_number())
    with pytest.MonkeyPatch.context() as patch:
        from campaigns import tasks

        patch.setattr(tasks.advance_enrollment, "delay", lambda *args, **kwargs: None)
        enrollment = enroll(automation, record=lead, trigger_key="created")
    holding, release = threading.Event(), threading.Event()

    def hold_another_enrollments_lock():
        # What a second worker advancing another enrollment of the same automation holds.
        with transaction.atomic():
            Automation.objects.select_for_update().get(pk=automation.pk)
            holding.set()
            release.wait(30)
        connections.close_all()

    other = threading.Thread(target=hold_another_enrollments_lock)
    other.start()
    try:
        assert holding.wait(30)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("messaging.services.hand_over.queue_hand_over", lambda *a, **k: None)
            assert advance(enrollment.pk) == Enrollment.Status.COMPLETED
    finally:
        release.set()
        other.join(30)


def test_a_repeated_task_does_not_cut_a_wait_short(org_a, alice, line, monkeypatch):
    from campaigns import tasks
    from campaigns.automations.engine import advance, enroll

    welcome = template(org_a, "Hi {{first_name}}")
    automation = do_create_automation(
        org_a,
        alice,
        name="Wait first",
        trigger={"type": "manual"},
        steps=[
            {"type": "wait", "until": "delay", "minutes": 60},
            {"type": "send_template", "template": welcome.pk},
        ],
    )
    do_set_automation_status(automation, alice, Automation.Status.ACTIVE)
    monkeypatch.setattr(tasks.advance_enrollment, "delay", lambda *args, **kwargs: None)
    lead = Lead.objects.create(organization=org_a, first_name="Kim", mobile_phone=daytime_number())
    enrollment = enroll(automation, record=lead, trigger_key="run:1")
    assert advance(enrollment.pk) == Enrollment.Status.WAITING
    assert advance(enrollment.pk) == "not due"
    enrollment.refresh_from_db()
    assert enrollment.step_index == 0 and enrollment.reason == "wait:delay"
    assert not Message.objects.filter(organization=org_a).exists()

"""Campaigns through real processes (production mode): a Celery worker sends the steps the dispatcher
releases; pause and resume mid-step; a worker killed mid-step or mid-run and restarted leaves nobody with a
step twice or a step missed; an opt-out mid-campaign stops every further text, queued ones included."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

import pytest
from django.utils import timezone

from campaigns.drip import dispatcher
from campaigns.drip.models import Campaign, CampaignRecipient, CampaignSend
from campaigns.drip.services import do_pause_campaign, do_resume_campaign, do_start_campaign
from messaging.models import Message
from messaging.services.consent import do_change_consent
from tests import factories_send
from tests.campaign_helpers import campaign, daytime_people, enroll
from tests.factories_send import FAST_RATES
from tests.plugins.servers import ROOT, server_env, start_celery_worker, wait_until

line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db(transaction=True)

THREE_STEPS = [
    {"body": "Acme step 1 for {{name}}"},
    {"body": "Acme step 2 for {{name}}", "wait_minutes": 0},
    {"body": "Acme step 3 for {{name}}", "wait_minutes": 0},
]

# Runs one recipient's step in a child process that dies (os._exit: no cleanup) right after the send service
# stored the message, before the step's transaction commits.
CRASHING_STEP = """
import os, sys
import django

django.setup()
from campaigns.drip import dispatcher

real_send = dispatcher.send_many


def send_then_die(*args, **kwargs):
    result = real_send(*args, **kwargs)
    print("stored", result.queued[0].pk, flush=True)
    os._exit(17)


dispatcher.send_many = send_then_die
print(dispatcher.send_step(int(sys.argv[1]), 0), flush=True)
"""


@pytest.fixture
def worker_env(twilio_sandbox, monkeypatch, settings):
    if settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("a worker process needs production mode (REDIS_URL)")
    settings.QUICKSEND_CAMPAIGN_LEASE_SECONDS = 3
    extra = {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(FAST_RATES),
        "DJANGO_SETTINGS_MODULE": "quicksend.settings",
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    from tests.conftest import clear_own_cache

    clear_own_cache()
    return extra


def _drip(org, admin, line, people, steps=THREE_STEPS):
    drip = campaign(org, admin, [line.number], steps=steps, window_clock="recipient")
    for i, phone in enumerate(people):
        enroll(drip, [phone], merge={"name": f"P{i}"})
    return do_start_campaign(drip, admin)


def _beat_until(condition, timeout, worker):
    """Tick the dispatcher (what beat does every second) until ``condition`` holds."""
    wait_until(
        lambda: (dispatcher.dispatch(), condition())[1],
        timeout=timeout,
        message=f"the campaign did not get there\n{worker.log()[-3000:]}",
    )


def _at_twilio(twilio_sandbox, line) -> Counter:
    return Counter((m["to"], m["body"]) for m in twilio_sandbox.messages(line.sid))


def test_a_real_worker_sends_every_step_once_in_order(
    org_a, alice, line, twilio_sandbox, worker_env, tmp_path
):
    worker = start_celery_worker(tmp_path / "celery.log", worker_env)
    try:
        people = daytime_people(5)
        drip = _drip(org_a, alice, line, people)
        _beat_until(
            lambda: (
                CampaignRecipient.objects.filter(campaign=drip, status="completed").count() == 5
                and not Message.objects.filter(organization=org_a, sid=None).exists()
            ),
            60,
            worker,
        )
        at_twilio = _at_twilio(twilio_sandbox, line)
        assert sum(at_twilio.values()) == 15 and set(at_twilio.values()) == {1}
        for i, phone in enumerate(people):
            bodies = [m.body for m in Message.objects.filter(to_number=phone).order_by("id")]
            assert bodies == [
                f"Acme step 1 for P{i} Reply STOP to opt out.",
                f"Acme step 2 for P{i}",
                f"Acme step 3 for P{i}",
            ]
        dispatcher.dispatch()
        drip.refresh_from_db()
        assert drip.status == Campaign.Status.COMPLETED
    finally:
        worker.stop()


def test_pause_mid_step_holds_everyone_and_resume_finishes(
    org_a, alice, line, twilio_sandbox, worker_env, tmp_path
):
    worker = start_celery_worker(tmp_path / "celery.log", worker_env)
    try:
        drip = _drip(org_a, alice, line, daytime_people(6))
        _beat_until(lambda: CampaignSend.objects.filter(campaign=drip).exists(), 60, worker)
        do_pause_campaign(drip, alice)
        # Whatever was released before the pause is done or given back; then nothing moves.
        wait_until(
            lambda: (
                not CampaignRecipient.objects.filter(campaign=drip, claimed_until__isnull=False).exists()
                or not CampaignRecipient.objects.filter(claimed_until__gt=timezone.now()).exists()
            ),
            timeout=30,
        )
        frozen = CampaignSend.objects.filter(campaign=drip).count()
        for _ in range(3):
            dispatcher.dispatch()
        assert CampaignSend.objects.filter(campaign=drip).count() == frozen < 18
        do_resume_campaign(drip, alice)
        _beat_until(
            lambda: CampaignRecipient.objects.filter(campaign=drip, status="completed").count() == 6,
            60,
            worker,
        )
        assert CampaignSend.objects.filter(campaign=drip).count() == 18
        wait_until(lambda: sum(_at_twilio(twilio_sandbox, line).values()) == 18, timeout=30)
        assert set(_at_twilio(twilio_sandbox, line).values()) == {1}
    finally:
        worker.stop()


def test_a_worker_killed_mid_step_leaves_nothing_and_the_step_goes_once(org_a, alice, line, worker_env):
    drip = _drip(org_a, alice, line, daytime_people(1), steps=[{"body": "Acme hello {{name}}"}])
    person = CampaignRecipient.objects.get(campaign=drip)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_STEP, str(person.pk)],
        cwd=ROOT,
        env=server_env(worker_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 17, crashed.stdout + crashed.stderr
    assert "stored" in crashed.stdout
    assert not Message.objects.filter(organization=org_a).exists()  # rolled back with the step
    assert not CampaignSend.objects.exists()
    person.refresh_from_db()
    assert person.step_index == 0 and person.status == "pending"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("messaging.tasks.sending.deliver_batch_task.delay", lambda *a, **k: None)
        assert dispatcher.send_step(person.pk, 0) == "sent"
        assert dispatcher.send_step(person.pk, 0) == "done"
    assert Message.objects.filter(organization=org_a).count() == 1


def test_a_worker_killed_mid_run_and_restarted_gives_nobody_a_step_twice(
    org_a, alice, line, twilio_sandbox, worker_env, tmp_path, monkeypatch
):
    # The hand-overs the killed worker held for their slots are queued again by the tick once stranded
    # (a minute in production; 3 s here).
    monkeypatch.setattr(dispatcher, "STRANDED_SECONDS", 3)
    people = daytime_people(8)
    first = start_celery_worker(tmp_path / "first.log", worker_env)
    drip = _drip(org_a, alice, line, people)
    try:
        _beat_until(lambda: CampaignSend.objects.filter(campaign=drip).count() >= 6, 60, first)
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
    second = start_celery_worker(tmp_path / "second.log", worker_env)
    try:
        _beat_until(
            lambda: (
                CampaignRecipient.objects.filter(campaign=drip, status="completed").count() == 8
                and not Message.objects.filter(organization=org_a, sid=None).exists()
            ),  # every text handed over
            90,
            second,
        )
    finally:
        second.stop()
    sends = Counter(CampaignSend.objects.filter(campaign=drip).values_list("recipient_id", "step_index"))
    assert len(sends) == 24 and set(sends.values()) == {1}  # every person, every step, once
    messages = Counter(Message.objects.filter(organization=org_a).values_list("to_number", "body"))
    assert len(messages) == 24 and set(messages.values()) == {1}
    # At Twilio: every text once. (A send task the killed worker held is redelivered by the broker later.)
    at_twilio = _at_twilio(twilio_sandbox, line)
    assert len(at_twilio) == 24 and set(at_twilio.values()) == {1}


def test_an_opt_out_mid_campaign_stops_every_further_text(
    org_a, alice, line, twilio_sandbox, worker_env, tmp_path
):
    worker = start_celery_worker(tmp_path / "celery.log", worker_env)
    try:
        people = daytime_people(3)
        steps = [{"body": "Acme 1 {{name}}"}, {"body": "Acme 2 {{name}}", "wait_minutes": 1}]
        drip = _drip(org_a, alice, line, people, steps=steps)
        _beat_until(
            lambda: Message.objects.filter(organization=org_a).exclude(sid=None).count() == 3, 60, worker
        )
        quitter = people[0]
        do_change_consent(org_a, quitter, "opt_out", "keyword", keyword="STOP")
        person = CampaignRecipient.objects.get(campaign=drip, phone=quitter)
        assert person.status == "opted_out"
        # Even a step already released for them (a queued task) sends nothing.
        CampaignRecipient.objects.filter(pk=person.pk).update(status="in_progress")
        assert dispatcher.send_step(person.pk, 1) in ("opted_out", "done")
        CampaignRecipient.objects.filter(campaign=drip).exclude(pk=person.pk).update(next_at=timezone.now())
        _beat_until(
            lambda: CampaignRecipient.objects.filter(campaign=drip, status="completed").count() == 2,
            60,
            worker,
        )
        assert Message.objects.filter(to_number=quitter).count() == 1
        assert [m["to"] for m in twilio_sandbox.messages(line.sid)].count(quitter) == 1
    finally:
        worker.stop()

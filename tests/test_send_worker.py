"""The send task in real processes: a send killed between Twilio's acceptance and storing the SID is not sent
twice, and (production mode) a real Celery worker sends, retries a rate-limited request and honours a STOP
that arrives while the message waits in the queue."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from messaging.models import Message
from messaging.services import hand_over
from messaging.services.consent import do_change_consent
from messaging.services.sending import do_send_message
from messaging.tasks.sending import send_message_task
from tenancy.models import Membership
from tests import factories_send
from tests.factories_send import FAST_RATES
from tests.plugins.servers import ROOT, server_env, wait_until

CUSTOMER = "+12065550199"
line = factories_send.line
fast_rates = factories_send.fast_rates

pytestmark = pytest.mark.django_db(transaction=True)

# Runs the send task in a child process whose "worker" dies (os._exit: no cleanup, no exception handlers)
# right after Twilio accepted the message and before the SID is stored.
CRASHING_SEND = """
import os, sys
import django

django.setup()
from messaging.services import delivery
from messaging.tasks import sending


def crash(message_id, sid):
    print("accepted", sid, flush=True)
    os._exit(17)


delivery._accepted_by_twilio = crash
sending.send_message_task.apply(args=[int(sys.argv[1])])
print("not killed", flush=True)
"""


@pytest.fixture
def child_env(twilio_sandbox, monkeypatch):
    """What a child process (the crashing sender, the Celery worker) needs to reach this test's sandbox."""
    extra = {
        "TWILIO_API_BASE_URL": twilio_sandbox.base_url,
        "QUICKSEND_SEND_RATES": json.dumps(FAST_RATES),
        "QUICKSEND_SEND_RETRY_BASE_SECONDS": "0.05",
        # The crashed hand-over is reconciled at once instead of after the in-flight grace period.
        "QUICKSEND_SEND_IN_FLIGHT_SECONDS": "0",
        "DJANGO_SETTINGS_MODULE": "quicksend.settings",
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return server_env(extra)


@pytest.fixture(autouse=True)
def _no_in_flight_grace(settings):
    settings.QUICKSEND_SEND_IN_FLIGHT_SECONDS = 0


def _store(org, user, monkeypatch, **kwargs) -> Message:
    """Store a message without letting the commit hook queue its hand-over (the test runs the task itself)."""
    with monkeypatch.context() as patch:
        patch.setattr(hand_over, "queue_hand_over", lambda *args, **kw: None)
        return do_send_message(
            org,
            actor=user,
            membership=Membership.objects.get(organization=org, user=user),
            source="agent",
            **kwargs,
        )


def _run_task_again(request, message_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        assert send_message_task.apply(args=[message_id]).get() == "reconciled"
    else:
        request.getfixturevalue("celery_worker_process")
        send_message_task.delay(message_id)
        wait_until(lambda: Message.objects.get(pk=message_id).sid, timeout=30)


def test_a_send_killed_after_twilio_accepted_it_is_reconciled_not_sent_twice(
    request, org_a, alice, line, twilio_sandbox, child_env, monkeypatch
):
    message = _store(org_a, alice, monkeypatch, to=CUSTOMER, body="Exactly once, please")
    # (the grace period for hand-overs still in flight is switched off: this one's process is dead)
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_SEND, str(message.pk)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 17, child.stdout + child.stderr
    accepted_sid = child.stdout.split()[1]
    message.refresh_from_db()
    # The crash left exactly the state the issue describes: handed over, Twilio has it, we have no SID.
    assert message.handed_over_at is not None and message.sid is None and message.status == "pending"
    assert [m["sid"] for m in twilio_sandbox.messages(line.sid)] == [accepted_sid]

    _run_task_again(request, message.pk)

    message.refresh_from_db()
    assert message.sid == accepted_sid
    assert [m["sid"] for m in twilio_sandbox.messages(line.sid)] == [accepted_sid]
    assert message.send_attempts == 1


def test_a_send_that_died_before_twilio_got_it_is_sent_once_after_reconciling(
    org_a, alice, line, twilio_sandbox, monkeypatch
):
    # Another message with the same body to the same number is already at Twilio: it must not be adopted.
    earlier = _store(org_a, alice, monkeypatch, to=CUSTOMER, body="Same words")
    assert send_message_task.apply(args=[earlier.pk]).get() == "sent"
    message = _store(org_a, alice, monkeypatch, to=CUSTOMER, body="Same words")
    Message.objects.filter(pk=message.pk).update(handed_over_at=timezone.now() - timedelta(seconds=1))
    assert send_message_task.apply(args=[message.pk]).get() == "sent"
    message.refresh_from_db()
    earlier.refresh_from_db()
    sids = [m["sid"] for m in twilio_sandbox.messages(line.sid)]
    assert sids == [earlier.sid, message.sid] and earlier.sid != message.sid


def test_real_worker_sends_a_message_end_to_end(
    request, org_a, alice, line, twilio_sandbox, child_env, celery_worker_process
):
    message = do_send_message(
        org_a,
        actor=alice,
        membership=Membership.objects.get(organization=org_a, user=alice),
        source="api",
        to=CUSTOMER,
        body="From the worker",
    )
    wait_until(lambda: Message.objects.get(pk=message.pk).sid, timeout=30)
    message.refresh_from_db()
    assert [m["sid"] for m in twilio_sandbox.messages(line.sid)] == [message.sid]
    assert message.status in ("queued", "sending", "sent", "delivered")


def test_real_worker_retries_a_rate_limited_send_until_twilio_takes_it(
    org_a, alice, line, twilio_sandbox, child_env, celery_worker_process
):
    twilio_sandbox.behaviour(line.sid, concurrency_limit=1, hold_requests=True)
    parked = threading.Thread(target=factories_send.park_a_request, args=(twilio_sandbox, line))
    parked.start()
    try:
        wait_until(lambda: factories_send.account_is_busy(twilio_sandbox, line), timeout=20)
        message = do_send_message(
            org_a,
            actor=alice,
            membership=Membership.objects.get(organization=org_a, user=alice),
            source="api",
            to=CUSTOMER,
            body="Patience",
        )
        wait_until(lambda: Message.objects.get(pk=message.pk).send_attempts >= 2, timeout=30)
        assert twilio_sandbox.messages(line.sid) == []
    finally:
        twilio_sandbox.behaviour(line.sid, hold_requests=False, concurrency_limit=100)
        parked.join(10)
    wait_until(lambda: Message.objects.get(pk=message.pk).sid, timeout=30)
    message.refresh_from_db()
    assert message.status != "failed" and message.error_code is None
    assert [m["sid"] for m in twilio_sandbox.messages(line.sid)] == [message.sid]


def test_real_worker_does_not_send_a_message_queued_before_a_stop(
    org_a, alice, line, twilio_sandbox, child_env, monkeypatch, celery_worker_process
):
    message = _store(org_a, alice, monkeypatch, to=CUSTOMER, body="Queued before the STOP")
    do_change_consent(org_a, CUSTOMER, "opt_out", "keyword", keyword="STOP")
    send_message_task.delay(message.pk)
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "failed", timeout=30)
    message.refresh_from_db()
    assert "opted out" in message.error_message and message.handed_over_at is None
    assert twilio_sandbox.messages(line.sid) == []


def test_a_hand_over_still_in_flight_elsewhere_is_not_reconciled_or_resent(
    org_a, alice, line, twilio_sandbox, monkeypatch, settings
):
    # The same task delivered twice: the second copy finds a fresh hand-over and waits instead of sending.
    settings.QUICKSEND_SEND_IN_FLIGHT_SECONDS = 30
    message = _store(org_a, alice, monkeypatch, to=CUSTOMER, body="In flight")
    Message.objects.filter(pk=message.pk).update(handed_over_at=timezone.now())
    from messaging.services import delivery

    with pytest.raises(delivery.RetryLater):
        delivery.deliver(message.pk)
    assert twilio_sandbox.messages(line.sid) == []
